"""Entry point for every experiment: python train.py [experiment=<preset>] [group=option] [key=value]."""
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from dni_repro.config import register_configs
from dni_repro.errors import RunDiverged, UserError, WorkerFailed
from dni_repro.launch import run_job
from dni_repro.sweeps import check_sweep

register_configs()
# Set here, in the process that parses the command line, so that launcher workers inherit it.
SWEEP_SIZE_VARIABLE = "DNI_REPRO_SWEEP_SIZE"


def job_label() -> str:
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return ""
    total = os.environ.get(SWEEP_SIZE_VARIABLE)
    return f"job {hydra_cfg.job.num + 1}/{total}" if total else f"job {hydra_cfg.job.num + 1}"


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg):
    """Returns the run's val/error: the objective when an Optuna search (hparams_search=...) runs it."""
    try:
        hydra_cfg = HydraConfig.get()
        summary = run_job(cfg, Path(hydra_cfg.runtime.output_dir), overrides=list(hydra_cfg.overrides.task),
                          job_label=job_label())
        return summary.get("val_error")
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except WorkerFailed as failure:
        if failure.message:  # else the worker has printed its own line
            print(f"error: {failure.message}", file=sys.stderr, flush=True)
        sys.exit(failure.exit_status)
    except RunDiverged as error:
        print(f"{error}", file=sys.stderr, flush=True)
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # Hydra records the job (or the search its trial) as failed and runs the rest
        sys.exit(3)


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if {"-m", "--multirun"} & set(arguments) and SWEEP_SIZE_VARIABLE not in os.environ:
        try:
            size = check_sweep(arguments)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        if size is not None:
            os.environ[SWEEP_SIZE_VARIABLE] = str(size)
    main()
