"""Run, or continue, the SG-model search of appendix A.1 for one column; or write its report.

A search keeps its Optuna study in sqlite (logs/search/optuna.db), so running this again after a
kill continues the same study: trials that were running when it died are marked failed, and only
the trials still missing from the budget are run.

Usage:
  python scripts/search_sg.py search --interface dni [--trials 12] [--profile quick] [--dataset mnist_5k]
                                     [--depth 4] [--log-dir logs] [--no-parallel] [overrides ...]
  python scripts/search_sg.py report [--interfaces dni cdni] [--dataset mnist_5k] [--depth 4] [--log-dir logs]
                                     [--out-dir results] [--stem search_sg]
"""
import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from dni_repro.reports.figures import load_runs, write_report  # noqa: E402
from dni_repro.reports.search import search_report  # noqa: E402


def study_name(dataset: str, depth: int, interface: str) -> str:
    # The name conf/hparams_search/sg_search.yaml gives the study.
    return f"search_sg_{dataset}_fcn{depth}_{interface}"


def finished_trials(log_dir: Path, name: str) -> int:
    """Trials the study has ended; those a killed search left running are marked failed first."""
    import optuna

    path = log_dir / "search" / "optuna.db"
    if not path.is_file():
        return 0
    storage = optuna.storages.RDBStorage(f"sqlite:///{path.resolve()}")
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return 0
    ended = 0
    for trial in storage.get_all_trials(study_id, deepcopy=False):
        if trial.state == optuna.trial.TrialState.RUNNING:
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            storage.set_trial_state(trial_id, optuna.trial.TrialState.FAIL)
            print(f"trial {trial.number} of {name} was left running by an interrupted search: marked failed")
        ended += 1
    return ended


def search(args, overrides: list[str]) -> None:
    name = study_name(args.dataset, args.depth, args.interface)
    finished = finished_trials(args.log_dir, name)
    remaining = args.trials - finished
    if remaining <= 0:
        print(f"{name}: all {args.trials} trials have run; raise --trials to search on")
        return
    print(f"{name}: running {remaining} of {args.trials} trials", flush=True)
    command = [sys.executable, "train.py", "-m", "hparams_search=sg_search", f"experiment=table1_mnist_fcn_{args.interface}",
               f"dataset={args.dataset}", f"model.depth={args.depth}", f"profile={args.profile}",
               f"paths.log_dir={args.log_dir.resolve()}", f"hydra.sweeper.n_trials={remaining}",
               *(["launcher=local_parallel"] if args.parallel else []), *overrides]
    if "hydra/sweeper/sampler=grid" not in overrides:  # a grid has no seed: it walks every setting once
        command.append(f"hydra.sweeper.sampler.seed={finished}")
    # Two trials at a time on a 2-core machine: one thread each.
    result = subprocess.run(command, cwd=REPO_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if result.returncode != 0:
        sys.exit(result.returncode)


def report(args) -> None:
    columns = {}
    for interface in args.interfaces:
        name = study_name(args.dataset, args.depth, interface)
        folder = args.log_dir / name
        runs = load_runs(folder, status=None) if folder.is_dir() else []
        if not runs:
            sys.exit(f"error: no trials of {name} under {folder}; run `make search-sg` first")
        columns[interface] = runs
    markdown, plot = search_report(columns)
    stem = args.stem
    print("wrote " + write_report(args.out_dir, (f"{stem}.md", f"{stem}.png"), markdown, (plot,)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for command in ("search", "report"):
        sub = commands.add_parser(command)
        sub.add_argument("--dataset", default="mnist_5k")
        sub.add_argument("--depth", type=int, default=4)
        sub.add_argument("--log-dir", type=Path, default=REPO_ROOT / "logs")
        if command == "search":
            sub.add_argument("--interface", choices=("dni", "cdni"), required=True)
            sub.add_argument("--trials", type=int, default=12, help="the study's whole budget, not this call's")
            sub.add_argument("--profile", default="quick")
            sub.add_argument("--parallel", action=argparse.BooleanOptionalAction, default=True,
                             help="two trials at a time through the joblib launcher (launcher=local_parallel)")
        else:
            sub.add_argument("--interfaces", nargs="+", default=["dni", "cdni"])
            sub.add_argument("--out-dir", type=Path, default=REPO_ROOT / "results")
            sub.add_argument("--stem", default="search_sg")
    args, overrides = parser.parse_known_args()
    if args.command == "search":
        search(args, overrides)
    else:
        if overrides:
            parser.error(f"unrecognized arguments: {' '.join(overrides)}")
        report(args)


if __name__ == "__main__":
    main()
