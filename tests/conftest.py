import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from dni_repro.config import REPO_ROOT, compose_train_config

os.environ.setdefault("WANDB_MODE", "disabled")
torch.set_num_threads(1)
compose_config = compose_train_config


def run_in_process(overrides: list[str], run_dir: Path, resume: bool = False) -> dict:
    from dni_repro.launch import run_job

    cfg = compose_config(["profile=smoke", "logger=none", *overrides])
    if resume:
        cfg.resume = str(run_dir)
    return run_job(cfg, run_dir)


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def cfg_factory():
    return compose_config


def plain(cfg):
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)


# Environment for train.py subprocesses: no W&B, one thread each (tests may run several at once).
CLI_ENV = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}


def run_script(name: str, args: list[str]) -> subprocess.CompletedProcess:
    """Run `python scripts/NAME ARGS` in this process, as its `__main__`, from the repository root.

    For the report scripts that import torch: a fresh interpreter would spend seconds importing it
    again. The exit status, stdout and stderr come back as from a subprocess: `sys.exit(message)`
    prints the message and gives 1, an uncaught exception its traceback and 1."""
    import contextlib
    import io
    import runpy
    import traceback

    stdout, stderr = io.StringIO(), io.StringIO()
    saved_argv, saved_cwd, saved_path = sys.argv, os.getcwd(), list(sys.path)
    script = REPO_ROOT / "scripts" / name
    returncode = 0
    try:
        sys.argv = [str(script), *args]
        os.chdir(REPO_ROOT)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                runpy.run_path(str(script), run_name="__main__")
            except SystemExit as exit_:
                if exit_.code is None or isinstance(exit_.code, int):
                    returncode = exit_.code or 0
                else:
                    print(exit_.code, file=sys.stderr)
                    returncode = 1
            except Exception:
                traceback.print_exc()
                returncode = 1
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
        os.chdir(saved_cwd)
    return subprocess.CompletedProcess([name, *args], returncode, stdout.getvalue(), stderr.getvalue())


def train_cli(args: list[str], timeout: int = 600, **extra_env) -> subprocess.CompletedProcess:
    """Run `python train.py ARGS` from the repository root, W&B off unless extra_env says otherwise."""
    env = {**CLI_ENV, **extra_env}
    return subprocess.run(
        [sys.executable, "train.py", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


# The slowest tests, longest first (seconds to a minute each, most of it in subprocesses). Under
# `pytest -n 2 --dist worksteal` (make test) they start first, so that the two workers finish
# together instead of one waiting on a long test that began last. A name that no longer matches
# any test is ignored; the order of every other test is left as collected.
SLOW_FIRST = (
    "test_search.py::test_two_trial_search",
    "test_search.py::test_a_diverging_trial",
    "test_sweeps_and_reports.py::test_local_parallel_launcher",
    "test_run_lifecycle.py::test_progress_is",
    "test_wandb.py::test_unreachable_server",
    "test_sweeps_and_reports.py::test_basic_launcher_sweep",
    "test_wandb.py::test_two_job_multirun",
    "test_sweeps_and_reports.py::test_runs_started_together",
    "test_run_lifecycle.py::test_a_sweep_carries_on",
    "test_reproducibility.py::test_sigkill",
    "test_reproducibility.py::test_sigterm",
    "test_czarnecki_convergence.py::test_short_grid",
    "test_czarnecki_convergence.py::test_script_writes",
    "test_recurrent_runs.py::test_cli_reports_missing_data",
    "test_run_lifecycle.py::test_diverged_run",
    "test_representations.py::test_deep_mnist_report_pairs",
    "test_ff_studies.py::test_fig9_report",
)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """pytest-xdist, in the controller: a worker collects with --dist reset to "no", so pass it on."""
    node.workerinput["dni_repro_dist"] = node.config.getoption("dist")


def pytest_collection_modifyitems(config, items):
    # Only work stealing copes with the slow tests bunched at the front: plain --dist load would hand
    # the first block of consecutive tests, all of them slow, to one worker.
    workerinput = getattr(config, "workerinput", None)
    dist = workerinput.get("dni_repro_dist") if workerinput is not None else config.getoption("dist", "no")
    if dist != "worksteal":
        return

    def rank(item) -> int:
        return next((i for i, name in enumerate(SLOW_FIRST) if name in item.nodeid), len(SLOW_FIRST))

    items.sort(key=rank)  # stable: the rest keep their order
