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


def train_cli(args: list[str], timeout: int = 600, **extra_env) -> subprocess.CompletedProcess:
    """Run `python train.py ARGS` from the repository root, W&B off unless extra_env says otherwise."""
    env = {**CLI_ENV, **extra_env}
    return subprocess.run(
        [sys.executable, "train.py", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
