"""What every training loop shares around its steps: logging, checkpoints, SIGTERM, the summary.

A loop opens a `RunSession` once its state is built; on resume the session loads
the checkpoint into `saved` (RNG state already restored) for the loop to read
its own parts from. The loop calls `checkpoint(step, state)` with its own state,
checks `stop_requested` between steps, and ends with `finish(...)` in a `finally` block.
A checkpoint is written only from finite state, so a run that diverges keeps its last good one.
"""
import signal
import sys
import time
from pathlib import Path
from typing import Optional

import torch
from omegaconf import OmegaConf

from dni_repro.errors import RunDiverged
from dni_repro.runs.checkpoint import load_checkpoint, save_checkpoint
from dni_repro.runs.progress import Progress
from dni_repro.runs.provenance import run_labels, run_provenance
from dni_repro.runs.record import RunRecord
from dni_repro.runs.runtime import TerminationRequest, device_description, restore_rng_state, rng_state
from dni_repro.runs.wandb_sink import WandbSink


def _floating_tensors(state) -> list[torch.Tensor]:
    if isinstance(state, torch.Tensor):
        return [state] if state.is_floating_point() else []
    if isinstance(state, dict):
        state = list(state.values())
    if isinstance(state, (list, tuple)):
        return [tensor for value in state for tensor in _floating_tensors(value)]
    return []


def _all_finite(state) -> bool:
    """One device sync for the whole state, not one per tensor."""
    checks = [torch.isfinite(tensor).all() for tensor in _floating_tensors(state)]
    return bool(torch.stack(checks).all()) if checks else True


class RunSession:
    def __init__(self, cfg, run_dir: Path, device: torch.device, resume: bool, job_label: str = ""):
        self.run_dir, self.device = Path(run_dir), device
        self.saved: Optional[dict] = load_checkpoint(self.run_dir) if resume else None
        if self.saved is not None:
            restore_rng_state(self.saved["rng"], device)
        self.first_step = self.saved["step"] if self.saved else 0
        self.checkpoint_step: Optional[int] = self.first_step if self.saved else None
        self.wall_time_before = self.saved["wall_time_s"] if self.saved else 0.0
        # Taken before training, so the commit is the one whose code was imported.
        self.provenance = {**run_provenance(cfg), "device": device_description(device)}
        self.config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
        names = run_labels(cfg)
        wandb_sink = (
            WandbSink.start(cfg.logger, self.run_dir, self.config, names["group"], names["name"], names["tags"],
                            self.saved["wandb_id"] if self.saved else None)
            if cfg.logger.name.value == "wandb"
            else None
        )
        label = " ".join(part for part in (job_label, names["name"]) if part)
        progress = Progress(cfg.trainer.max_steps, self.first_step, label) if cfg.trainer.progress else None
        self.record = RunRecord(self.run_dir, wandb_sink, resume_step=self.first_step if self.saved else None,
                                progress=progress)
        self.started = time.perf_counter()
        self.termination = TerminationRequest().install()

    @property
    def stop_requested(self) -> bool:
        return self.termination.requested

    def wall_time(self) -> float:
        return self.wall_time_before + time.perf_counter() - self.started

    def checkpoint(self, step: int, state: dict) -> None:
        """Save the loop's `state` with the config, step, RNG state, wall time and W&B id.

        Non-finite weights or optimizer state are not saved: the loop sees the diverged loss at its next log."""
        if not _all_finite(state):
            return
        self.checkpoint_step = step
        save_checkpoint(
            self.run_dir,
            {
                "config": self.config,
                "step": step,
                "rng": rng_state(self.device),
                "wall_time_s": self.wall_time(),
                "wandb_id": self.record.wandb.run_id if self.record.wandb else None,
                **state,
            },
        )

    def finish(self, status: str, step: int, samples_per_step: int, results: dict) -> dict:
        """Write summary.json (and the W&B summary); after SIGTERM, exit with 128 + SIGTERM;
        after divergence, raise RunDiverged."""
        self.termination.restore()
        session_time = time.perf_counter() - self.started
        summary = {
            "steps": step,
            **results,
            "wall_time_s": self.wall_time(),
            "samples_per_s": (step - self.first_step) * samples_per_step / session_time if session_time > 0 else None,
            "provenance": self.provenance,
            "config": self.config,
            "stopped_by": "SIGTERM" if self.termination.requested else None,
        }
        outcome = self.record.finish(status, summary)
        if self.termination.requested:
            print(f"[dni-repro] SIGTERM: checkpoint saved at step {step}; continue with resume={self.run_dir}",
                  file=sys.stderr)
            raise SystemExit(128 + signal.SIGTERM)
        if status == "diverged":
            kept = (f"the last good checkpoint (step {self.checkpoint_step}) is kept in {self.run_dir}"
                    if self.checkpoint_step is not None else f"no checkpoint was written yet; resume={self.run_dir} starts it again")
            because = results.get("diverged_because", "the training loss is not finite")
            raise RunDiverged(f"diverged at step {step}: {because}; {kept}")
        return outcome
