"""Sweeps give each job its own folder; reports rebuild Table 1 from run folders."""
import json
import subprocess
import sys

import pytest

from dni_repro.config import REPO_ROOT
from dni_repro.runs.provenance import run_labels
from dni_repro.reports.figures import load_runs
from dni_repro.reports.table1 import table1_markdown
from tests.conftest import CLI_ENV, compose_config, run_in_process, train_cli

# Narrow layers and SG models for the sweeps, whose tests look at folders, not at numbers.
NARROW = ["model.width=16", "model.sg_width=16"]


def test_basic_launcher_sweep_gives_every_job_its_own_folder(tmp_path):
    result = train_cli(
        ["-m", "profile=smoke", "logger=none", "trainer.max_steps=2", *NARROW,
         "interface=bprop,no_bprop,dni,cdni", "model.depth=2,3", f"paths.log_dir={tmp_path}"]
    )
    assert result.returncode == 0, result.stderr
    summaries = [json.loads(path.read_text()) for path in tmp_path.rglob("summary.json")]
    assert len(summaries) == 8
    cells = {(s["config"]["interface"]["name"], s["config"]["model"]["depth"]) for s in summaries}
    assert len(cells) == 8


def test_runs_started_together_never_share_a_folder(tmp_path):
    env = CLI_ENV
    command = [sys.executable, "train.py", "profile=smoke", "logger=none", "trainer.max_steps=1", *NARROW,
               f"paths.log_dir={tmp_path}"]
    processes = [subprocess.Popen(command, cwd=REPO_ROOT, env=env, stderr=subprocess.DEVNULL) for _ in range(3)]
    assert [process.wait(timeout=300) for process in processes] == [0, 0, 0]
    assert len(list(tmp_path.rglob("summary.json"))) == 3


def test_run_labels_let_a_workspace_group_runs_into_tables():
    labels = run_labels(compose_config(["experiment=table1_mnist_fcn_cdni", "model.depth=5"]))
    assert labels["group"] == "table1"
    assert set(labels["tags"]) == {"interface:cdni", "model:fcn", "depth:5", "dataset:mnist", "profile:quick"}


def test_local_parallel_launcher_runs_a_sweep(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    result = train_cli(
        ["-m", "launcher=local_parallel", "profile=smoke", "logger=none",
         "trainer.max_steps=2", *NARROW, "seed=0,1", f"paths.log_dir={tmp_path}"]
    )
    assert result.returncode == 0, result.stderr
    summaries = [json.loads(path.read_text()) for path in tmp_path.rglob("summary.json")]
    assert sorted(s["provenance"]["seed"] for s in summaries) == [0, 1]
    assert len({path.parent.parent for path in tmp_path.rglob("summary.json")}) == 1  # one sweep folder


def test_slurm_launcher_preset_composes():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from hydra import compose, initialize_config_dir
    from dni_repro.config import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["launcher=slurm"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")


def test_table1_markdown_puts_ours_beside_the_paper(tmp_path):
    for interface in ("bprop", "cdni"):
        run_in_process([f"interface={interface}", "model.depth=3", "experiment_name=table1"], tmp_path / interface)
    runs = load_runs(tmp_path)
    table = table1_markdown(runs)
    by_interface = {run.config["interface"]["name"]: run.summary["test_error"] for run in runs}
    row = next(line for line in table.splitlines() if line.startswith("| FCN | 3 |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    # columns: model, layers, then (reproduced, paper) for No Bprop, Bprop, DNI, cDNI
    assert cells[2:] == ["—", "9.3", f"{by_interface['bprop']:.1f}", "2.0", "—", "1.9", f"{by_interface['cdni']:.1f}", "2.2"]
    assert "## MNIST, reproduced on `mnist_5k`" in table
    assert "| MNIST FCN3 Bprop | 0 |" in table
    assert "CIFAR-10 (not run)" in table


def test_table1_averages_seeds_of_a_cell(tmp_path):
    for seed in (0, 1, 2):
        run_in_process(["interface=bprop", "model.depth=3", f"seed={seed}"], tmp_path / str(seed))
    runs = load_runs(tmp_path)
    errors = [run.summary["test_error"] for run in runs]
    mean = sum(errors) / 3
    spread = (sum((e - mean) ** 2 for e in errors) / 2) ** 0.5
    row = next(line for line in table1_markdown(runs).splitlines() if line.startswith("| FCN | 3 |"))
    assert f"| {mean:.1f} ± {spread:.1f} (n=3) | 2.0 |" in row


def test_provenance_keeps_the_commit_the_process_started_with(monkeypatch):
    """A `git pull` during a sweep must not relabel the jobs that still run the imported code."""
    from dni_repro.runs import provenance

    provenance.commit_of_this_process.cache_clear()
    answers = iter(["commit-at-start", "commit-after-pull"])
    monkeypatch.setattr(provenance, "git_commit", lambda repo_dir: next(answers))
    cfg = compose_config([])
    try:
        assert provenance.run_provenance(cfg)["git_commit"] == "commit-at-start"
        assert provenance.run_provenance(cfg)["git_commit"] == "commit-at-start"
    finally:
        provenance.commit_of_this_process.cache_clear()
