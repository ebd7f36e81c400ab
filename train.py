"""Entry point for every experiment: python train.py [experiment=<preset>] [group=option] [key=value]."""
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode

from dni_repro.config import register_configs
from dni_repro.errors import RunDiverged, UserError
from dni_repro.launch import run_job

register_configs()
# Set here, in the process that parses the command line, so that launcher workers inherit it.
SWEEP_SIZE_VARIABLE = "DNI_REPRO_SWEEP_SIZE"


def sweep_size(arguments: list[str]) -> int:
    """Jobs in a multirun of these command-line arguments (the product of the swept values' counts)."""
    overrides = OverridesParser.create().parse_overrides([a for a in arguments if "=" in a and not a.startswith("-")])
    size = 1
    for override in overrides:
        if override.is_sweep_override():
            size *= len(list(override.sweep_string_iterator()))
    return size


def job_label() -> str:
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return ""
    total = os.environ.get(SWEEP_SIZE_VARIABLE)
    return f"job {hydra_cfg.job.num + 1}/{total}" if total else f"job {hydra_cfg.job.num + 1}"


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg) -> dict:
    try:
        hydra_cfg = HydraConfig.get()
        return run_job(cfg, Path(hydra_cfg.runtime.output_dir), overrides=list(hydra_cfg.overrides.task),
                       job_label=job_label())
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except RunDiverged as error:
        print(f"{error}", file=sys.stderr, flush=True)
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # Hydra records the job as failed, runs the rest of the sweep, then exits non-zero
        sys.exit(3)


if __name__ == "__main__":
    if {"-m", "--multirun"} & set(sys.argv[1:]) and SWEEP_SIZE_VARIABLE not in os.environ:
        try:
            os.environ[SWEEP_SIZE_VARIABLE] = str(sweep_size(sys.argv[1:]))
        except Exception:  # an argument Hydra will reject itself, with a better message
            pass
    main()
