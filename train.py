"""Entry point for every experiment: python train.py [experiment=<preset>] [group=option] [key=value]."""
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig

from dni_repro.config import register_configs
from dni_repro.errors import UserError
from dni_repro.launch import run_job

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg) -> dict:
    try:
        hydra_cfg = HydraConfig.get()
        return run_job(cfg, Path(hydra_cfg.runtime.output_dir), overrides=list(hydra_cfg.overrides.task))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
