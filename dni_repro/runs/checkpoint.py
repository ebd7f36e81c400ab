"""Atomic checkpoints: a reader never sees a half-written file.

torch is imported where a checkpoint is read or written, not with this module: train.py answers
bad input (a resume folder that is no run, say) without the seconds that importing torch takes.
"""
import os
from pathlib import Path

CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(run_dir: Path, state: dict) -> None:
    import torch

    path = Path(run_dir) / CHECKPOINT_NAME
    temporary = path.with_suffix(".pt.tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def load_checkpoint(run_dir: Path) -> dict:
    import torch

    # The file holds numpy RNG state and plain Python objects besides tensors.
    return torch.load(Path(run_dir) / CHECKPOINT_NAME, map_location="cpu", weights_only=False)


def has_checkpoint(run_dir: Path) -> bool:
    return (Path(run_dir) / CHECKPOINT_NAME).is_file()
