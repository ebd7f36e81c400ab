"""Weights & Biases mirror of a run's metrics, which must never stop training.

The run's own files (metrics.jsonl, summary.json) are the record; W&B is a view
of them. Every W&B failure therefore degrades, once and loudly, to local files.
"""
import netrc
import os
import sys
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlparse

from dni_repro.names import WandbMode


def _say(message: str) -> None:
    print(f"[dni-repro] W&B: {message}", file=sys.stderr, flush=True)


def has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def resolve_mode(configured: WandbMode) -> str:
    """WANDB_MODE in the environment wins, as it does for wandb itself."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if configured == WandbMode.auto:
        return "online" if has_credentials() else "offline"
    return configured.value


class WandbSink:
    def __init__(self, run: Any):
        self._run = run
        self.run_id: str = run.id

    @classmethod
    def start(
        cls,
        logger_cfg,
        run_dir: Path,
        config: dict,
        group: str,
        name: str,
        tags: list[str],
        run_id: Optional[str] = None,
    ) -> Optional["WandbSink"]:
        mode = resolve_mode(logger_cfg.mode)
        if mode == "disabled":
            return None
        import wandb

        arguments = dict(
            project=logger_cfg.project,
            entity=logger_cfg.entity,
            group=group,
            name=name,
            tags=tags,
            config=config,
            dir=str(run_dir),
            id=run_id,
            resume="allow" if run_id else None,
            settings=wandb.Settings(init_timeout=logger_cfg.init_timeout_s, console="off", silent=True),
        )
        try:
            run = wandb.init(mode=mode, **arguments)
        except Exception as error:  # unreachable server, bad key, ...: keep training
            if mode != "online":
                _say(f"could not start ({type(error).__name__}: {error}); metrics go to the run's files only")
                return None
            _say(f"server unreachable ({type(error).__name__}); falling back to offline mode")
            mode = "offline"
            try:
                run = wandb.init(mode=mode, **arguments)
            except Exception as offline_error:
                _say(f"offline mode failed too ({type(offline_error).__name__}); metrics go to the run's files only")
                return None
        if mode == "offline":
            offline_dir = Path(run.dir).parent  # run.dir is <offline-run-...>/files
            _say(f"logging offline; upload later with `wandb sync {offline_dir}`")
        run.define_metric("step")
        run.define_metric("samples")
        run.define_metric("train/*", step_metric="step")
        run.define_metric("lr", step_metric="step")
        run.define_metric("test/error", step_metric="step", summary="min")
        run.define_metric("test/bpc", step_metric="step", summary="min")
        run.define_metric("valid/bpc", step_metric="step", summary="min")
        run.define_metric("curriculum/*", step_metric="step", summary="max")
        run.define_metric("time/*", step_metric="step")
        run.define_metric("sg_quality/*", step_metric="step")
        return cls(run)

    def log(self, step: int, metrics: dict) -> None:
        try:
            self._run.log({"step": step, **metrics}, step=step)
        except Exception as error:
            _say(f"logging failed ({type(error).__name__}); metrics go to the run's files only from here on")
            self._run = None

    def finish(self, summary: dict, exit_code: int) -> None:
        if self._run is None:
            return
        try:
            for key, value in summary.items():
                self._run.summary[key] = value
            self._run.finish(exit_code=exit_code)
        except Exception as error:
            _say(f"finishing the run failed ({type(error).__name__}); the run's files are complete")
        self._run = None
