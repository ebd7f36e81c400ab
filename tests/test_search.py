"""The validation split and the Optuna search over the SG model (appendix A.1)."""
import json
import subprocess
import sys

import pytest
import torch

from dni_repro.config import REPO_ROOT, validate
from dni_repro.data.mnist_family import load_mnist_5k
from dni_repro.data.tensors import hold_out_validation
from dni_repro.errors import ConfigError
from tests.conftest import CLI_ENV, compose_config, run_in_process, run_script

optuna = pytest.importorskip("optuna", reason="the search extra: pip install -e '.[search]'")


def rows(split) -> list[bytes]:
    return [bytes(image.numpy().tobytes()) for image in split.inputs]


def test_validation_split_is_disjoint_fixed_by_its_seed_and_kept_out_of_training():
    data = load_mnist_5k()
    held = hold_out_validation(data, 500, seed=3)
    assert (len(held.train), len(held.validation), len(held.test)) == (len(data.train) - 500, 500, len(data.test))
    train, validation, test = set(rows(held.train)), set(rows(held.validation)), set(rows(held.test))
    assert not train & validation and not validation & test
    # Nothing is lost: the two parts are exactly the original training examples.
    assert sorted(rows(held.train) + rows(held.validation)) == sorted(rows(data.train))
    again = hold_out_validation(data, 500, seed=3)
    assert torch.equal(again.validation.inputs, held.validation.inputs)
    assert not torch.equal(hold_out_validation(data, 500, seed=4).validation.inputs, held.validation.inputs)
    assert hold_out_validation(data, 0, seed=3) is data  # the paper's protocol: train on everything
    with pytest.raises(ConfigError, match="dataset.val_size=4000 must be between 0 and the 4000"):
        hold_out_validation(data, 4000, seed=3)


def test_validation_error_is_logged_and_reported(tmp_path):
    summary = run_in_process(["dataset.val_size=400", "dataset.val_seed=5"], tmp_path)
    assert summary["validation"] == {"examples": 400, "seed": 5, "train_examples": 3600}
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    evaluated = [entry for entry in logged if "test/error" in entry]
    assert evaluated and all("val/error" in entry for entry in evaluated)
    assert summary["val_error"] == evaluated[-1]["val/error"]
    plain = run_in_process([], tmp_path / "plain")
    assert "val_error" not in plain and "validation" not in plain


def test_table1_presets_train_on_all_training_examples():
    for interface in ("bprop", "no_bprop", "dni", "cdni"):
        assert compose_config([f"experiment=table1_mnist_fcn_{interface}"]).dataset.val_size == 0


def test_search_preset_composes_with_its_sweeper_and_validation_split():
    from hydra import compose, initialize_config_dir

    from dni_repro.config import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["hparams_search=sg_search", "experiment=table1_mnist_fcn_cdni",
                                          "dataset=mnist_5k"], return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "minimize"
    assert set(sweeper.params) == {"interface.sg.hidden_layers", "interface.sg.hidden_width", "optimizer.lr"}
    assert sweeper.params["interface.sg.hidden_layers"] == "choice(0, 1, 2)"
    assert sweeper.study_name == cfg.experiment_name == "search_sg_mnist_5k_fcn4_cdni"
    assert sweeper.storage.startswith("sqlite:///") and sweeper.storage.endswith("/search/optuna.db")
    assert sweeper.max_failure_rate == 1.0
    assert cfg.dataset.val_size == 1000
    validate(compose_config(["hparams_search=sg_search", "experiment=table1_mnist_fcn_cdni", "dataset=mnist_5k"]))


def search(tmp_path, trials: int, *extra: str) -> subprocess.CompletedProcess:
    """scripts/search_sg.py one trial at a time (the joblib launcher has its own test in test_sweeps_and_reports).
    The script runs in this process; the train.py it starts is a process of its own."""
    return run_script("search_sg.py", [
        "search", "--interface", "cdni", "--trials", str(trials), "--profile", "smoke", "--log-dir", str(tmp_path),
        "--no-parallel", "logger=none", "trainer.progress=false", "dataset.val_size=200", "trainer.max_steps=2",
        "model.width=16", *extra])


def study_trials(tmp_path) -> list:
    study = optuna.load_study(study_name="search_sg_mnist_5k_fcn4_cdni",
                              storage=f"sqlite:///{tmp_path / 'search' / 'optuna.db'}")
    return study.get_trials(deepcopy=False)


def test_two_trial_search_completes_in_sqlite_a_second_call_continues_the_study_and_the_report_reads_it(tmp_path):
    first = search(tmp_path, 2)
    assert first.returncode == 0, first.stderr[-2000:]
    trials = study_trials(tmp_path)
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    runs = sorted((tmp_path / "search_sg_mnist_5k_fcn4_cdni").rglob("summary.json"))
    assert len(runs) == 2
    values = sorted(json.loads(path.read_text())["val_error"] for path in runs)
    assert sorted(t.value for t in trials) == values  # each trial's objective is its run's val/error

    again = search(tmp_path, 3)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "running 1 of 3 trials" in again.stdout
    trials = study_trials(tmp_path)
    assert [t.number for t in trials] == [0, 1, 2]
    assert trials[2].params != trials[0].params  # the continued sampler does not replay the first draws
    # With the budget spent there is nothing to launch, so the script can run in this process.
    done = run_script("search_sg.py", ["search", "--interface", "cdni", "--trials", "3", "--log-dir", str(tmp_path)])
    assert "all 3 trials have run" in done.stdout and len(study_trials(tmp_path)) == 3

    # The report reads the trials' run folders.
    result = run_script("search_sg.py", ["report", "--interfaces", "cdni", "--log-dir", str(tmp_path),
                                         "--out-dir", str(tmp_path / "out")])
    assert result.returncode == 0, result.stderr
    markdown = (tmp_path / "out" / "search_sg.md").read_text()
    assert "## cDNI" in markdown and "3 trials (0 failed or diverged)" in markdown
    assert "| paper's choice (A.1, selected on test error) | 0 |" in markdown
    assert "profile: smoke" in markdown and (tmp_path / "out" / "search_sg.png").stat().st_size > 0


def test_a_diverging_trial_is_recorded_as_failed_and_the_search_goes_on(tmp_path):
    # The random sampler, seeded by the script with the trials already run (0), draws 1e-3 and then 1e9.
    result = search(tmp_path, 2, "hydra/sweeper/sampler=random", "optimizer.lr=choice(1e9,1e-3)",
                    "interface.sg.hidden_layers=0", "interface.sg.hidden_width=16", "trainer.max_steps=12")
    assert result.returncode == 0, result.stderr[-2000:]
    trials = {t.params["optimizer.lr"]: t for t in study_trials(tmp_path)}
    assert set(trials) == {1e9, 1e-3}
    assert trials[1e9].state.name == "FAIL" and trials[1e9].value is None
    assert trials[1e-3].state.name == "COMPLETE"
    study = optuna.load_study(study_name="search_sg_mnist_5k_fcn4_cdni",
                              storage=f"sqlite:///{tmp_path / 'search' / 'optuna.db'}")
    assert study.best_trial.params["optimizer.lr"] == 1e-3


def test_a_search_over_a_missing_key_fails_in_one_line_before_any_trial(tmp_path):
    result = subprocess.run(
        [sys.executable, "train.py", "-m", "hparams_search=sg_search", "logger=none", f"paths.log_dir={tmp_path}",
         "interface.sg.hiden=choice(1,2)"],
        cwd=REPO_ROOT, env=CLI_ENV, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "interface.sg.hiden" in lines[0]
    assert not list(tmp_path.rglob("summary.json")) and not (tmp_path / "search" / "optuna.db").exists()
