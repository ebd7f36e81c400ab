import os
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
