"""Labels that let anyone tell where a number came from, and group it with its peers."""
import datetime
import functools
import platform
from pathlib import Path

import torch

from dni_repro.runs.runtime import git_commit


@functools.lru_cache(maxsize=None)
def commit_of_this_process(repo_dir: Path) -> str:
    """The checkout's commit when this process first asked, i.e. before its first job trained.

    A sweep imports the code once and runs every job in that process, so a
    `git pull` during the sweep must not relabel its later jobs.
    """
    return git_commit(repo_dir)


def run_provenance(cfg) -> dict:
    return {
        "git_commit": commit_of_this_process(Path(cfg.paths.root_dir)),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "profile": cfg.trainer.profile,
        "seed": cfg.seed,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def run_labels(cfg) -> dict:
    """W&B group, run name and tags; the tags let a workspace rebuild the paper's tables."""
    interface, model = cfg.interface.name.value, cfg.model.name.value
    if cfg.model.name.value == "lstm":  # recurrent tasks: the unroll length T is what tables compare
        shape, shape_tag = f"lstm{cfg.model.width}-T{cfg.trainer.bptt_length}", f"T:{cfg.trainer.bptt_length}"
    elif cfg.model.name.value == "two_rnn":  # multi-network: the tick ratio T
        period = cfg.dataset.digit_stream.period
        shape, shape_tag = f"two_rnn{cfg.model.width}-T{period}", f"T:{period}"
    else:
        shape, shape_tag = f"{model}{cfg.model.depth}", f"depth:{cfg.model.depth}"
    return {
        "group": cfg.experiment_name,
        "name": f"{interface}-{shape}-{cfg.dataset.name}-{cfg.trainer.profile}-seed{cfg.seed}",
        "tags": [
            f"interface:{interface}",
            f"model:{model}",
            shape_tag,
            f"dataset:{cfg.dataset.name}",
            f"profile:{cfg.trainer.profile}",
        ],
    }
