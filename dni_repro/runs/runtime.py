"""Device choice, seeding and provenance: the facts a result must carry."""
import random
import signal
import subprocess
import threading
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from dni_repro.errors import ConfigError


def select_device(requested: str) -> torch.device:
    device = _device(requested)
    if device.type == "cpu":
        # Subnormal floats (Adam's moments of a barely-learning SG model, a decaying recurrent
        # gradient) make CPU arithmetic several times slower; flushing them to zero changes
        # values below 1e-38 only.
        torch.set_flush_denormal(True)
    return device


def _device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={requested} but this machine has no CUDA device; use device=auto or device=cpu")
    device = torch.device(requested)
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device={requested} but this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def seed_everything(seed: Optional[int]) -> None:
    """Seed Python, NumPy and torch (CPU and every GPU). `seed=null` leaves them unseeded."""
    if seed is not None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)


def rng_state(device: torch.device) -> dict:
    """Every RNG the run draws from; on CUDA only the training device's generator,
    so the checkpoint also resumes on a machine with a different number of GPUs."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng_state(state: dict, device: torch.device) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def git_commit(repo_dir: Path) -> str:
    """The checkout's commit, with `-dirty` when tracked files differ from it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=repo_dir, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo_dir, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    threads = torch.get_num_threads()
    return f"cpu ({threads} thread{'' if threads == 1 else 's'})"


class TerminationRequest:
    """Turns SIGTERM (a SLURM time limit, preemption, `kill`) into a flag checked between steps.

    The loop then checkpoints and records the run as stopped instead of dying
    mid-step and losing everything since the last periodic checkpoint.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def install(self) -> "TerminationRequest":
        # Signal handlers can only be installed from the main thread.
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None
