"""Same seed, same numbers; a killed run resumed ends exactly where an uninterrupted one does."""
import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from dni_repro.runs.checkpoint import load_checkpoint
from dni_repro.config import REPO_ROOT
from dni_repro.runs.record import RunRecord
from tests.conftest import CLI_ENV, run_in_process, train_cli

RUN = ["interface=cdni", "model.depth=3", "trainer.max_steps=9", "trainer.checkpoint_every=3"]
# Narrow layers and SG models, where a test compares runs with each other: a fraction of the default widths' time.
NARROW = ["model.width=16", "model.sg_width=16"]


def metrics_lines(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def comparable(summary: dict) -> dict:
    return {key: summary[key] for key in ("status", "steps", "test_error", "final", "best")}


def crash_after_logging(monkeypatch, run_dir, step: int = 7, torn_line: str = "", run: tuple = tuple(RUN)) -> None:
    """Run `run` (default RUN) in run_dir and make it die right after logging `step` (RUN's last
    checkpoint before step 7 is step 6), optionally leaving `torn_line` half-written at the end of metrics.jsonl."""
    original_log = RunRecord.log
    crash_step = step

    def log_then_crash(self, step, metrics):
        original_log(self, step, metrics)
        if step == crash_step:
            with open(self.metrics_path, "a") as handle:
                handle.write(torn_line)
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(RunRecord, "log", log_then_crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_in_process(list(run), run_dir)
    monkeypatch.setattr(RunRecord, "log", original_log)


@pytest.mark.parametrize("interface", ["bprop", "dni", "cdni"])
def test_same_seed_gives_identical_metrics(interface, tmp_path):
    overrides = [f"interface={interface}", "trainer.max_steps=6", "seed=7", *NARROW]
    first = run_in_process(overrides, tmp_path / "a")
    second = run_in_process(overrides, tmp_path / "b")
    assert comparable(first) == comparable(second)
    assert metrics_lines(tmp_path / "a") == metrics_lines(tmp_path / "b")
    run_in_process([f"interface={interface}", "trainer.max_steps=6", "seed=8", *NARROW], tmp_path / "c")
    assert metrics_lines(tmp_path / "c") != metrics_lines(tmp_path / "a")


def test_resume_after_a_crash_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    uninterrupted = run_in_process(RUN, tmp_path / "whole")

    # Crash at step 7: the newest checkpoint is from step 6, so the metric line
    # of step 7 must be dropped and logged again by the resumed run.
    crash_after_logging(monkeypatch, tmp_path / "killed")
    assert json.loads((tmp_path / "killed" / "summary.json").read_text())["status"] == "failed"
    assert load_checkpoint(tmp_path / "killed")["step"] == 6

    resumed = run_in_process([], tmp_path / "killed", resume=True)
    assert comparable(resumed) == comparable(uninterrupted)
    assert metrics_lines(tmp_path / "killed") == metrics_lines(tmp_path / "whole")


def test_checkpoint_holds_everything_needed_to_continue(tmp_path):
    run_in_process(RUN, tmp_path)
    state = load_checkpoint(tmp_path)
    assert state["step"] == 9
    assert {"model", "optimizer", "sampler", "rng", "config", "wall_time_s"} <= set(state)
    assert {"python", "numpy", "torch"} <= set(state["rng"])
    assert any(key.startswith("interfaces.") for key in state["model"])  # the SG models
    assert state["optimizer"]["state"]  # Adam moments


# Many tiny steps for the kill tests: each costs milliseconds, so a run takes about two seconds, yet
# when the test sees its trigger (a checkpoint, 20 metric lines) some 200 steps remain: the signal,
# sent within milliseconds by the fast polling, lands long before the run could end.
# Evaluations every 10 steps keep test/error in the metrics that the resumed run must reproduce.
TINY_STEPS = ["interface=dni", "model.depth=3", *NARROW, "trainer.eval_every=10"]


def test_sigkill_then_resume_from_the_command_line(tmp_path):
    """A real kill -9 mid-run; resuming finishes with the uninterrupted run's metrics."""
    env = CLI_ENV
    run = [*TINY_STEPS, "trainer.max_steps=200", "trainer.checkpoint_every=20"]

    def train(run_dir, extra=()):
        return [sys.executable, "train.py", "profile=smoke", "logger=none", *run, f"hydra.run.dir={run_dir}", *extra]

    # The uninterrupted reference run need not go through the command line: the same config in-process.
    whole = run_in_process(run, tmp_path / "whole")
    assert whole["status"] == "completed"

    killed_dir = tmp_path / "killed"
    process = subprocess.Popen(train(killed_dir), cwd=REPO_ROOT, env=env, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (killed_dir / "checkpoint.pt").exists():
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    if (killed_dir / "summary.json").exists():
        pytest.skip("the run finished before it could be killed")

    resumed = train_cli([f"resume={killed_dir}", f"hydra.run.dir={tmp_path / 'resume_call'}"])
    assert resumed.returncode == 0, resumed.stderr
    expected = json.loads((tmp_path / "whole" / "summary.json").read_text())
    actual = json.loads((killed_dir / "summary.json").read_text())
    assert comparable(actual) == comparable(expected)
    assert metrics_lines(killed_dir) == metrics_lines(tmp_path / "whole")
    assert torch.equal(
        load_checkpoint(killed_dir)["model"]["layers.0.1.weight"],
        load_checkpoint(tmp_path / "whole")["model"]["layers.0.1.weight"],
    )


def test_resuming_a_finished_run_keeps_its_result(tmp_path):
    finished = run_in_process(RUN, tmp_path)
    again = run_in_process([], tmp_path, resume=True)
    assert comparable(again) == comparable(finished)



def test_resume_survives_a_metrics_line_torn_by_the_kill(tmp_path, monkeypatch):
    uninterrupted = run_in_process(RUN, tmp_path / "whole")
    crash_after_logging(monkeypatch, tmp_path / "killed", torn_line='{"step": 8, "samp')
    resumed = run_in_process([], tmp_path / "killed", resume=True)
    assert comparable(resumed) == comparable(uninterrupted)
    assert metrics_lines(tmp_path / "killed") == metrics_lines(tmp_path / "whole")


def test_sigterm_checkpoints_and_resume_finishes_the_run(tmp_path):
    """A SLURM time limit or preemption sends SIGTERM: nothing since the last checkpoint is lost."""
    env = CLI_ENV
    # checkpoint_every is larger than the run: only the SIGTERM handler can write a checkpoint early.
    max_steps = 250
    common = ["profile=smoke", "logger=none", *TINY_STEPS, f"trainer.max_steps={max_steps}",
              "trainer.checkpoint_every=5000"]
    stopped_dir = tmp_path / "stopped"
    process = subprocess.Popen(
        [sys.executable, "train.py", *common, f"hydra.run.dir={stopped_dir}"],
        cwd=REPO_ROOT, env=env, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and len(metrics_lines_if_any(stopped_dir)) < 20:
        time.sleep(0.002)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    summary = json.loads((stopped_dir / "summary.json").read_text())
    if summary["status"] == "completed":
        pytest.skip("the run finished before SIGTERM arrived")
    assert process.returncode == 128 + signal.SIGTERM
    assert summary["status"] == "failed" and summary["stopped_by"] == "SIGTERM"
    assert load_checkpoint(stopped_dir)["step"] == summary["steps"] >= 20
    assert "resume=" in stderr

    # In-process: the command line's resume= is exercised by the kill -9 test above.
    run_in_process([], stopped_dir, resume=True)
    final = json.loads((stopped_dir / "summary.json").read_text())
    assert final["status"] == "completed" and final["steps"] == max_steps


def metrics_lines_if_any(run_dir):
    path = run_dir / "metrics.jsonl"
    return path.read_text().splitlines() if path.exists() else []


def test_resume_rejects_other_overrides(tmp_path):
    run_in_process(RUN, tmp_path / "run")
    result = train_cli([f"resume={tmp_path / 'run'}", "trainer.max_steps=20"])
    assert result.returncode == 2
    assert "trainer.max_steps=20 would be ignored" in result.stderr
