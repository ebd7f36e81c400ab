"""What every execution=distributed loop shares: starting its workers and joining each to the job.

`start_workers` runs a task's per-worker `train(place, cfg, run_dir, device, resume, job_label)`
in K processes that train.py spawns on this machine, or, under torchrun, in this process as one of
the K. Rank 0 owns the run folder; the summary it writes is the run's result.
"""
import os
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from omegaconf import OmegaConf

from dni_repro.config import schema_of
from dni_repro.errors import ConfigError, WorkerFailed
from dni_repro.execution.process_group import Place, join, leave, started_by_torchrun, torchrun_place
from dni_repro.execution.spawn import run_workers
from dni_repro.runs.checkpoint import has_checkpoint, load_checkpoint
from dni_repro.runs.record import SUMMARY_NAME
from dni_repro.runs.runtime import select_device


def start_workers(cfg, run_dir: Path, resume: bool, job_label: str, train: Callable) -> dict:
    device = select_device(cfg.device)
    workers = cfg.execution.workers
    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    if started_by_torchrun():
        place = torchrun_place()
        if place.world_size != workers:
            raise ConfigError(f"torchrun started {place.world_size} processes but execution.workers={workers}; "
                              f"pass --nproc-per-node (times --nnodes) = {workers}")
        serve(place, train, config, str(run_dir), resume, "env://", job_label)
        if not place.is_first:
            return {}
    else:
        if device.type == "cuda" and workers > torch.cuda.device_count():
            raise ConfigError(f"execution.workers={workers} on CUDA needs a GPU per worker, but this machine has "
                              f"{torch.cuda.device_count()}; use fewer workers or device=cpu")
        rendezvous = Path(run_dir) / f".rendezvous-{os.getpid()}"
        rendezvous.unlink(missing_ok=True)
        try:
            run_workers(serve, workers, (train, config, str(run_dir), resume, f"file://{rendezvous}", job_label),
                        threads=cfg.execution.threads_per_worker)
        except WorkerFailed as failure:
            if failure.message:
                raise WorkerFailed(f"{failure.message}; {_kept_checkpoint(Path(run_dir))}", failure.exit_status) from None
            raise
        finally:
            rendezvous.unlink(missing_ok=True)
    return OmegaConf.to_container(OmegaConf.load(Path(run_dir) / SUMMARY_NAME))


def _kept_checkpoint(run_dir: Path) -> str:
    if not has_checkpoint(run_dir):
        return f"no checkpoint was written yet; resume={run_dir} starts it again"
    return f"the last checkpoint (step {load_checkpoint(run_dir)['step']}) is kept; continue with resume={run_dir}"


def serve(place: Place, train: Callable, config: dict, run_dir: str, resume: bool, init_method: str,
          job_label: str) -> None:
    """One worker: its typed config, its device (GPU `local_rank` on CUDA), the process group, `train`."""
    cfg = OmegaConf.merge(OmegaConf.structured(schema_of(config)), config)
    device = select_device(cfg.device)
    if device.type == "cuda":
        device = torch.device("cuda", place.local_rank)
    join(place, device, cfg.execution.timeout_s, init_method)
    try:
        folders = [None] * place.world_size
        dist.all_gather_object(folders, str(Path(run_dir).resolve()))
        if len(set(folders)) > 1:
            raise ConfigError(f"the workers would write to {len(set(folders))} different run folders; under torchrun "
                              "pass --standalone (one machine) or the same --rdzv-id on every node, or hydra.run.dir=<shared dir>")
        train(place, cfg, Path(run_dir), device, resume, job_label)
    finally:
        leave()


def load_rank_state(run_dir: Path, place: Place, ranges: list) -> tuple[int, dict]:
    """A worker's step and own state from the run's checkpoint, after checking it was cut the same way."""
    saved = load_checkpoint(run_dir)
    if saved["execution"]["ranges"] != ranges:
        raise ConfigError(f"{run_dir} was run with the parts {saved['execution']['ranges']}, this run would use "
                          f"{ranges}; resume with the same execution.workers and execution.split")
    return saved["step"], saved["ranks"][place.rank]


def to_cpu(state):
    """A copy of `state` with every tensor on the CPU, to travel between ranks and into the checkpoint."""
    if isinstance(state, torch.Tensor):
        return state.cpu()
    if isinstance(state, dict):
        return {key: to_cpu(value) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(to_cpu(value) for value in state)
    return state
