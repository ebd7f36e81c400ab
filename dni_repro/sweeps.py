"""What train.py checks of a multirun before its first job starts: how many jobs it has, and
that every swept or searched key is a key of the run's config.

Hydra would otherwise find a bad key only when it composes each job, with a many-line message,
and an Optuna search would record every trial as failed.
"""
from typing import Optional

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dni_repro.config import compose_train_config
from dni_repro.errors import ConfigError

_ABSENT = object()


def _overrides(arguments: list[str]) -> list[Override]:
    return OverridesParser.create().parse_overrides([a for a in arguments if "=" in a and not a.startswith("-")])


def sweep_size(arguments: list[str]) -> Optional[int]:
    """Jobs in a grid multirun of these arguments; None where a swept value is an interval (a search)."""
    size = 1
    for override in _overrides(arguments):
        if override.is_sweep_override():
            if isinstance(override.value(), IntervalSweep):
                return None
            size *= len(list(override.sweep_string_iterator()))
    return size


def _first_job(override: Override) -> str:
    """The override as the first job of the sweep would get it."""
    if not override.is_sweep_override():
        return override.input_line
    value = override.value()
    first = value.start if isinstance(value, IntervalSweep) else next(override.sweep_string_iterator())
    return f"{override.get_key_element()}={first}"


def check_sweep(arguments: list[str]) -> Optional[int]:
    """Compose the sweep's first job; raise ConfigError naming a swept or searched key the run lacks.

    Returns the number of jobs: the grid's size, or an Optuna search's trial budget."""
    try:
        cfg = compose_train_config([_first_job(o) for o in _overrides(arguments)], return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as error:
        cause = f": {str(error.__cause__).splitlines()[0]}" if error.__cause__ else ""
        message = str(error).splitlines()[0].rstrip(".")
        raise ConfigError(f"{message}{cause}; `python train.py --cfg job` lists the valid keys") from None
    searched = cfg.hydra.sweeper.get("params") or {}
    for key in searched:
        if OmegaConf.select(cfg, key, default=_ABSENT) is _ABSENT:
            raise ConfigError(
                f"the search varies {key}, which is not a key of this run's config; "
                "fix hydra.sweeper.params (`python train.py --cfg job` lists the valid keys)"
            )
    if searched:
        dataset = cfg.dataset
        if cfg.task != "feedforward" or dataset.val_size == 0:
            raise ConfigError(
                "a search scores each trial on val/error, which feed-forward runs log when dataset.val_size > 0; "
                "use hparams_search=sg_search with a feed-forward preset"
            )
        return cfg.hydra.sweeper.n_trials
    return sweep_size(arguments)
