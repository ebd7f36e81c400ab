"""One job: validate the composed config, pick or reopen the run folder, dispatch the task."""
import json
import sys
from pathlib import Path
from typing import Sequence

from omegaconf import OmegaConf

from dni_repro.config import Task, schema_of, validate
from dni_repro.errors import UserError
from dni_repro.runs.checkpoint import CHECKPOINT_NAME, has_checkpoint, load_checkpoint
from dni_repro.runs.record import SUMMARY_NAME
# Written before the first step, so that a run killed before its first checkpoint can still be resumed.
CONFIG_NAME = "config.yaml"


def task_loop(cfg):
    """The training loop of a run's task and execution. Imported on demand, so that bad input is
    reported before torch is imported."""
    if cfg.execution is not None:
        from dni_repro.experiments import decoupled_feedforward, decoupled_multi_network

        return decoupled_multi_network.run if cfg.task == Task.multi_network else decoupled_feedforward.run
    from dni_repro.experiments import copy_task, feedforward, language_model, multi_network

    loops = {Task.feedforward: feedforward.run, Task.copy: copy_task.run, Task.language_model: language_model.run,
             Task.multi_network: multi_network.run}
    return loops[cfg.task]


def config_of_run(run_dir: Path):
    """The typed config a run was started with: from its checkpoint, or from config.yaml if it has none yet."""
    if has_checkpoint(run_dir):
        source = run_dir / CHECKPOINT_NAME
    elif (run_dir / CONFIG_NAME).is_file():
        source = run_dir / CONFIG_NAME
    else:
        raise UserError(
            f"resume={run_dir} is not a run directory (no {CONFIG_NAME} or {CHECKPOINT_NAME} there); "
            "pass the folder of a run started by train.py, e.g. resume=logs/adhoc/runs/<id>"
        )
    try:
        if source.name == CHECKPOINT_NAME:
            saved = load_checkpoint(run_dir)["config"]
        else:
            saved = OmegaConf.to_container(OmegaConf.load(source))
        return OmegaConf.merge(OmegaConf.structured(schema_of(saved)), saved)
    except Exception as error:  # truncated file, another program's file, an older schema
        raise UserError(f"cannot resume from {source}: {type(error).__name__}: {error}") from None


def run_job(cfg, output_dir: Path, overrides: Sequence[str] = (), job_label: str = "") -> dict:
    """`overrides` are the command line's task overrides, checked when resuming; `job_label` says
    which job of a sweep this is, for the progress output."""
    if cfg.resume is not None:
        run_dir = Path(cfg.resume)
        saved_cfg = config_of_run(run_dir)
        ignored = [o for o in overrides if not o.lstrip("+~").startswith("resume=")]
        if ignored:
            raise UserError(
                f"resume continues a run with its saved config, so {' '.join(ignored)} would be ignored; "
                "pass only resume=<run dir>"
            )
        cfg = saved_cfg
        validate(cfg)
        summary_path = run_dir / SUMMARY_NAME
        if summary_path.is_file() and json.loads(summary_path.read_text())["status"] == "completed":
            print(f"[dni-repro] {run_dir} has already completed; nothing to resume", file=sys.stderr)
            return json.loads(summary_path.read_text())
        from_checkpoint = has_checkpoint(run_dir)
        print(f"[dni-repro] resuming {run_dir}" + ("" if from_checkpoint else " from step 0 (it had no checkpoint yet)"),
              file=sys.stderr, flush=True)
        return task_loop(cfg)(cfg, run_dir, resume=from_checkpoint, job_label=job_label)
    validate(cfg)
    output_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True), output_dir / CONFIG_NAME)
    return task_loop(cfg)(cfg, output_dir, resume=False, job_label=job_label)
