"""W&B: offline runs leave local files, each sweep job is its own run, a dead server never stops training."""
import json
import os
import subprocess
import sys

import pytest

from dni_repro.config import REPO_ROOT
from tests.conftest import compose_config
from dni_repro.launch import run_job


def offline_runs(folder):
    return sorted(folder.rglob("offline-run-*"))


# A preset's experiment file comes after the profile, so the demo's own 1,500 steps would win over
# profile=smoke: cut the run back to the smoke profile's length, which is all the W&B files need.
SHORT_RUN = {"demo": ["trainer.max_steps=4", "trainer.eval_every=2", "trainer.log_every=1", "trainer.checkpoint_every=2"]}


@pytest.mark.parametrize("preset", ["demo", "table2_repeat_copy"])
def test_offline_run_leaves_a_local_run_directory(preset, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = compose_config([f"experiment={preset}", "profile=smoke", "logger=wandb", *SHORT_RUN.get(preset, [])])
    summary = run_job(cfg, tmp_path)
    assert summary["status"] == "completed"
    (run,) = offline_runs(tmp_path)
    assert list(run.glob("*.wandb")), "the offline run holds its log file for `wandb sync`"


# Narrow layers and SG models for the command-line runs: these tests are about W&B's files, not the numbers.
NARROW = ["model.width=16", "model.sg_width=16"]


def wandb_env(**extra):
    env = {key: value for key, value in os.environ.items() if not key.startswith("WANDB_")}
    return {**env, "OMP_NUM_THREADS": "1", **extra}


def test_two_job_multirun_makes_two_distinct_runs(tmp_path):
    result = subprocess.run(
        [sys.executable, "train.py", "-m", "profile=smoke", "logger=wandb", *NARROW, "seed=0,1", f"paths.log_dir={tmp_path}"],
        cwd=REPO_ROOT, env=wandb_env(WANDB_MODE="offline"), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    runs = offline_runs(tmp_path)
    assert len(runs) == 2
    run_ids = {path.name.rsplit("-", 1)[-1] for path in runs}
    assert len(run_ids) == 2
    summaries = sorted(tmp_path.rglob("summary.json"))
    assert len(summaries) == 2 and len({path.parent for path in summaries}) == 2
    assert result.stderr.count("wandb sync") == 2  # told once per run


def test_unreachable_server_falls_back_to_offline(tmp_path):
    env = wandb_env(WANDB_API_KEY="a" * 40, WANDB_BASE_URL="http://127.0.0.1:9")
    result = subprocess.run(
        [sys.executable, "train.py", "profile=smoke", "logger=wandb", *NARROW, "logger.mode=online",
         "logger.init_timeout_s=2", f"paths.log_dir={tmp_path}"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("falling back to offline") == 1
    (summary,) = tmp_path.rglob("summary.json")
    assert json.loads(summary.read_text())["status"] == "completed"
    assert len(offline_runs(tmp_path)) == 1
