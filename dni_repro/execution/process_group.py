"""Joining a worker to its job: backend, rendezvous, timeout, threads.

A worker is one rank of torch.distributed. Gloo carries CPU tensors and NCCL
CUDA tensors; the backend follows the training device. Every collective and
point-to-point wait gives up after `timeout_s`, so a rank whose peer has died
fails instead of waiting forever.
"""
import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

# Set by torchrun (torch.distributed.run) in every worker it starts.
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Place:
    """Where a worker sits in its job."""

    rank: int
    world_size: int
    local_rank: int

    @property
    def is_first(self) -> bool:
        return self.rank == 0

    @property
    def is_last(self) -> bool:
        return self.rank == self.world_size - 1


def started_by_torchrun() -> bool:
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def torchrun_place() -> Place:
    return Place(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]))


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def join(place: Place, device: torch.device, timeout_s: float, init_method: str = "env://") -> None:
    """Initialise the default process group; `init_method` is a file:// or tcp://127.0.0.1 address
    for spawned workers, env:// (MASTER_ADDR and MASTER_PORT) under torchrun."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(
        backend_for(device),
        init_method=init_method,
        rank=place.rank,
        world_size=place.world_size,
        timeout=datetime.timedelta(seconds=timeout_s),
    )


def leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
