"""One job: validate the composed config, pick or reopen the run folder, dispatch the task."""
import sys
from pathlib import Path

from omegaconf import OmegaConf

from dni_repro.checkpoint import has_checkpoint, load_checkpoint
from dni_repro.config import Task, TrainConfig, validate
from dni_repro.errors import UserError
from dni_repro.experiments import feedforward

TASKS = {Task.feedforward: feedforward.run}


def config_of_run(run_dir: Path):
    """The typed config a run was started with, read back from its checkpoint."""
    if not run_dir.is_dir() or not has_checkpoint(run_dir):
        raise UserError(
            f"resume={run_dir} is not a run directory (no checkpoint.pt there); "
            "pass the folder of a run started by train.py, e.g. resume=logs/adhoc/runs/<id>"
        )
    saved = load_checkpoint(run_dir)["config"]
    return OmegaConf.merge(OmegaConf.structured(TrainConfig), saved)


def run_job(cfg, output_dir: Path) -> dict:
    if cfg.resume is not None:
        run_dir = Path(cfg.resume)
        cfg = config_of_run(run_dir)
        print(f"[dni-repro] resuming {run_dir}", file=sys.stderr, flush=True)
        validate(cfg)
        return TASKS[cfg.task](cfg, run_dir, resume=True)
    validate(cfg)
    output_dir.mkdir(parents=True, exist_ok=True)
    return TASKS[cfg.task](cfg, output_dir, resume=False)
