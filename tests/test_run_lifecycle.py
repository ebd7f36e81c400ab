"""A run's life from the outside: what it prints while training, how it can always be resumed,
and how it ends when its loss diverges."""
import json
import os
import pty
import re
import subprocess
import sys

import pytest
import torch

from dni_repro.config import REPO_ROOT
from dni_repro.runs.checkpoint import has_checkpoint, load_checkpoint
from tests.conftest import CLI_ENV, run_in_process, train_cli
from tests.test_reproducibility import comparable, crash_after_logging, metrics_lines

RUN = ("interface=cdni", "model.depth=3", "trainer.max_steps=9", "trainer.checkpoint_every=3")
PLAIN_LINE = re.compile(r"step (\d+)/(\d+) \(\d+%\) [\d.]+ step/s eta \d+s")


def test_run_killed_before_its_first_checkpoint_resumes_from_step_0_and_ends_bit_equal(tmp_path, monkeypatch):
    uninterrupted = run_in_process(list(RUN), tmp_path / "whole")
    crash_after_logging(monkeypatch, tmp_path / "killed", step=2, torn_line='{"step": 3, "train/lo')
    assert not has_checkpoint(tmp_path / "killed")
    assert (tmp_path / "killed" / "config.yaml").is_file()

    resumed = run_in_process([], tmp_path / "killed", resume=True)
    assert comparable(resumed) == comparable(uninterrupted)
    assert metrics_lines(tmp_path / "killed") == metrics_lines(tmp_path / "whole")
    assert resumed["config"] == uninterrupted["config"]


def test_resume_of_a_folder_with_neither_config_nor_checkpoint_is_refused(tmp_path):
    result = train_cli([f"resume={tmp_path}"])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "no config.yaml or checkpoint.pt" in result.stderr


DIVERGING = ["profile=smoke", "logger=none", "model.width=16", "model.sg_width=16", "optimizer.lr=1e9",
             "trainer.max_steps=40", "trainer.checkpoint_every=2"]


def test_diverged_run_exits_non_zero_in_one_line_and_keeps_a_loadable_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    result = train_cli([*DIVERGING, f"hydra.run.dir={run_dir}", "trainer.progress=false"])
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("diverged at step ")
    diverged_at = int(lines[0].split()[3].rstrip(":"))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["steps"] == diverged_at
    saved = load_checkpoint(run_dir)
    assert 0 < saved["step"] < diverged_at
    assert f"checkpoint (step {saved['step']})" in lines[0]
    assert all(torch.isfinite(t).all() for t in saved["model"].values() if t.is_floating_point())
    assert all(torch.isfinite(t).all() for s in saved["optimizer"]["state"].values() for t in s.values()
               if torch.is_tensor(t) and t.is_floating_point())


def test_a_sweep_carries_on_past_a_diverged_job_and_says_which_job_is_running(tmp_path):
    sweep = tmp_path / "sweep"
    result = train_cli(["-m", *DIVERGING[:4], "optimizer.lr=1e9,1e-3", "trainer.max_steps=12",
                        "trainer.checkpoint_every=2", f"hydra.sweep.dir={sweep}"])
    assert result.returncode != 0
    statuses = [json.loads((sweep / job / "summary.json").read_text())["status"] for job in ("0", "1")]
    assert statuses == ["diverged", "completed"]
    assert "job 1/2 " in result.stderr and "job 2/2 " in result.stderr


def test_sweep_size_counts_every_swept_value():
    from dni_repro.sweeps import sweep_size

    assert sweep_size(["interface=bprop,dni,cdni", "model.depth=3,4", "seed=1", "-m"]) == 6
    assert sweep_size(["model.depth=range(3,7)"]) == 4
    assert sweep_size(["profile=smoke"]) == 1
    assert sweep_size(["optimizer.lr=interval(1e-4,1e-3)"]) is None  # an Optuna search: its budget decides


def test_progress_is_plain_lines_off_a_terminal_and_nothing_when_turned_off(tmp_path, capsys):
    small = ["model.width=16", "model.sg_width=16", "trainer.eval_every=10"]
    run_in_process(["trainer.max_steps=20", "trainer.log_every=1", *small], tmp_path / "plain")
    lines = [line for line in capsys.readouterr().err.splitlines() if PLAIN_LINE.search(line)]
    steps = [int(PLAIN_LINE.search(line).group(1)) for line in lines]
    assert steps == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]  # one line every tenth of the run
    assert all("train/loss=" in line for line in lines) and "test/error=" in lines[-1]
    assert "\r" not in "".join(lines)

    run_in_process(["trainer.max_steps=20", "trainer.log_every=1", "trainer.progress=false", *small], tmp_path / "quiet")
    assert not PLAIN_LINE.search(capsys.readouterr().err)


def test_progress_is_a_bar_at_a_pseudo_terminal(tmp_path):
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "train.py", "profile=smoke", "logger=none", "trainer.max_steps=6", "model.width=16",
         f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=REPO_ROOT, env=CLI_ENV, stdin=terminal, stdout=terminal, stderr=terminal,
    )
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the terminal closes when the process ends
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    assert process.wait(timeout=120) == 0
    text = output.decode(errors="replace")
    assert "\r" in text and "step/s" in text and "6/6" in text and "train/loss=" in text
    assert "100%|" in text
    assert not PLAIN_LINE.search(text)


@pytest.mark.parametrize("progress", ["true", "false"])
def test_progress_option_composes(progress, cfg_factory):
    assert cfg_factory([f"trainer.progress={progress}"]).trainer.progress is (progress == "true")
