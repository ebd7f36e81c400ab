"""Czarnecki et al. 2017, experiment A: train every artificial-data setting with backprop and with synthetic
gradients, then write the markdown report and the loss-gap curves.

Runs on one CPU thread, in float64; the default grid (80 runs) takes several minutes.
Usage: python scripts/make_czarnecki_convergence.py [--seed 0] [--steps 6000] [--quick]
       [--out results/czarnecki_convergence.md] [--png results/czarnecki_convergence.png]
"""
import argparse
import datetime
import shlex
import sys
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from dni_repro.czarnecki.convergence.grid import DEFAULT_STEPS, DIMS, run_grid  # noqa: E402
from dni_repro.czarnecki.convergence.report import ReportContext, markdown, outcome, plot  # noqa: E402
from dni_repro.data.artificial import DEFAULT_SIZE  # noqa: E402
from dni_repro.runs.runtime import device_description, git_commit  # noqa: E402

QUICK_STEPS = 1500


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="seeds the data and the initial models")
    parser.add_argument("--steps", type=int, default=None, help=f"gradient-descent steps per run ({DEFAULT_STEPS})")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_STEPS} steps and d=2 only: a smoke check")
    parser.add_argument("--n", type=int, default=DEFAULT_SIZE, help="examples per dataset")
    parser.add_argument("--out", type=Path, default=Path("results/czarnecki_convergence.md"))
    parser.add_argument("--png", type=Path, default=Path("results/czarnecki_convergence.png"))
    args = parser.parse_args()
    steps = args.steps if args.steps is not None else (QUICK_STEPS if args.quick else DEFAULT_STEPS)
    dims = DIMS[:1] if args.quick else DIMS

    torch.set_num_threads(1)  # the runs are small: one thread is fastest per run and leaves the rest of the CPU free
    commit = git_commit(REPO_ROOT)
    started = time.perf_counter()

    def progress(run) -> None:
        print(f"{run.dataset} d={run.dim} {run.model} {run.loss} {run.method}: relative gap "
              f"{run.relative_gap():.2e} ({outcome(run)}), {run.seconds:.1f} s", flush=True)

    rows = run_grid(steps=steps, seed=args.seed, dims=dims, n=args.n, on_run=progress)
    context = ReportContext(
        command=" ".join(["python", "scripts/make_czarnecki_convergence.py", *map(shlex.quote, sys.argv[1:])]),
        seed=args.seed,
        n=args.n,
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        commit=commit,
        device=device_description(torch.device("cpu")),
        torch_version=torch.__version__,
        wall_seconds=time.perf_counter() - started,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(rows, context, args.png.name))
    plot(rows, args.png, f"Relative loss gap (L − L*)/L* vs step; seed {args.seed}, {steps} steps, "
                         f"{context.date[:10]}, commit {commit}")
    print(f"wrote {args.out} and {args.png}: {len(rows)} runs in {context.wall_seconds:.0f} s")


if __name__ == "__main__":
    main()
