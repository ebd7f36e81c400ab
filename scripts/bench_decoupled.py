"""What decoupled execution buys: the MNIST FCN with cDNI and DNI, run four ways, timed in one go.

For each depth and interface, the same Table 1 preset is trained (as `python train.py` runs, one
after another, on an otherwise idle machine) as
  * one process at 1 thread;
  * one process at K threads (torch's intra-op parallelism);
  * K workers at 1 thread each (execution=distributed), at each staleness S given;
and Bprop, the baseline DNI must beat, as one process at 1 and at K threads and as pipelined
backprop (GPipe, M micro-batches) over K workers. Printed per run: samples/s, the wall time to
the first evaluation at or under the target test error, the final error, and each worker's share
of time spent blocked on its peers. Ratios are against one process at 1 thread of the same
interface. The time to target is the run's wall time scaled by the share of its steps done at that
evaluation (every run evaluates on the same schedule, so evaluation costs scale alike).

Writes results/bench_decoupled.md and results/bench_decoupled.png (test error against wall time).
Usage: python scripts/bench_decoupled.py [--dataset mnist_5k] [--depths 4 6] [--workers 2]
       [--staleness 1 2] [--micro-batches 4] [--steps-cdni 1500] [--steps-dni 400] [--target 10] [--target-dni 25]
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dni_repro.reports.figures import pyplot, save_figure  # noqa: E402
from dni_repro.runs.runtime import git_commit  # noqa: E402


def ways(workers: int, stalenesses: list[int], micro_batches: int) -> list[tuple[str, str, int, list[str]]]:
    """(label, interface or "" for the preset's, threads, extra overrides) for each way of running."""
    distributed = ["execution=distributed", f"execution.workers={workers}"]
    return [
        ("1 process, 1 thread", "", 1, []),
        (f"1 process, {workers} threads", "", workers, []),
        *[(f"{workers} workers, 1 thread each (S={staleness})", "", 1,
           [*distributed, f"execution.max_staleness={staleness}"]) for staleness in stalenesses],
        ("Bprop, 1 process, 1 thread", "bprop", 1, []),
        (f"Bprop, 1 process, {workers} threads", "bprop", workers, []),
        (f"Bprop pipelined, {workers} workers (GPipe, M={micro_batches})", "bprop", 1,
         [*distributed, f"execution.micro_batches={micro_batches}"]),
    ]


def train(overrides: list[str], threads: int, run_dir: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "WANDB_MODE": "disabled"}
    command = [sys.executable, "train.py", *overrides, "logger=none", "trainer.progress=false",
               f"hydra.run.dir={run_dir}"]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"error: {' '.join(overrides)} failed ({result.returncode}): {result.stderr.strip().splitlines()[-1:]}")
    summary = json.loads((run_dir / "summary.json").read_text())
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {"summary": summary, "lines": lines}


def time_to(run: dict, target: float):
    steps, wall = run["summary"]["steps"], run["summary"]["wall_time_s"]
    for line in run["lines"]:
        if line.get("test/error", 100.0) <= target:
            return wall * line["step"] / steps
    return None


def wait_shares(run: dict) -> str:
    final, wall = run["summary"]["final"], run["summary"]["wall_time_s"]
    shares = [final[key] / wall for key in sorted(final) if key.startswith("execution/wait_s_rank")]
    return " / ".join(f"{100 * share:.0f}%" for share in shares) if shares else "—"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist_5k")
    parser.add_argument("--depths", type=int, nargs="+", default=[4, 6])
    parser.add_argument("--interfaces", nargs="+", default=["cdni", "dni"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--staleness", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--micro-batches", type=int, default=4)
    parser.add_argument("--steps-cdni", type=int, default=1500)
    parser.add_argument("--steps-dni", type=int, default=400)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--target", type=float, default=10.0, help="cDNI's target test error (%%), for the time to target")
    parser.add_argument("--target-dni", type=float, default=25.0, help="DNI's target test error (%%)")
    parser.add_argument("--logs", type=Path, default=REPO / "logs" / "bench_decoupled")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench_decoupled.md")
    args = parser.parse_args()

    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S") + f"_{os.getpid()}"
    commit = git_commit(REPO)
    rows, curves = [], {}
    for depth in args.depths:
        for interface in args.interfaces:
            steps = args.steps_cdni if interface == "cdni" else args.steps_dni
            common = [f"experiment=table1_mnist_fcn_{interface}", f"dataset={args.dataset}", f"model.depth={depth}",
                      f"trainer.max_steps={steps}", f"trainer.eval_every={args.eval_every}",
                      f"trainer.log_every={args.eval_every}", f"trainer.checkpoint_every={steps}",
                      "experiment_name=bench_decoupled"]
            baseline = None
            for label, override_interface, threads, extra in ways(args.workers, args.staleness, args.micro_batches):
                overrides = [*common, *([f"interface={override_interface}"] if override_interface else []), *extra]
                run_dir = args.logs / stamp / f"fcn{depth}_{interface}_{len(rows)}"
                print(f"[bench] depth {depth}, {interface}: {label} ...", file=sys.stderr, flush=True)
                run = train(overrides, threads, run_dir)
                summary = run["summary"]
                baseline = baseline or summary["samples_per_s"]
                target = args.target if interface == "cdni" else args.target_dni
                reached = time_to(run, target)
                rows.append((depth, interface, label, summary["samples_per_s"], summary["samples_per_s"] / baseline,
                             target, reached, summary["test_error"], wait_shares(run), summary["wall_time_s"]))
                curves[(depth, interface, label)] = [
                    (summary["wall_time_s"] * line["step"] / summary["steps"], line["test/error"])
                    for line in run["lines"] if "test/error" in line]

    first_device = json.loads((next(args.logs.joinpath(stamp).iterdir()) / "summary.json").read_text())["provenance"]["device"]
    device = f"{first_device.split(' (')[0]}, {os.cpu_count()} CPU cores, threads per run as its row says"
    header = ("| depth | preset | way of running | samples/s | x 1 process 1 thread | target (%) | time to target (s) "
              "| final test error (%) | waiting share per worker | wall (s) |")
    lines = ["# Decoupled execution: what running the layer groups concurrently buys (issue #16)", "",
             f"Runs: dataset: {args.dataset}; profile: quick (Table 1 presets, batch 256); steps: cDNI "
             f"{args.steps_cdni}, DNI {args.steps_dni}; workers: {args.workers}; staleness S in {args.staleness}; "
             f"device: {device}; date: {datetime.date.today()}; commit: {commit}; "
             "command: `make bench-decoupled` (scripts/bench_decoupled.py), one run at a time.", "",
             "`x 1 process 1 thread` divides by the first row of the same depth and interface; the Bprop rows "
             "run the same preset with interface=bprop. Time to target scales the run's wall time by the share of "
             "steps done at the first evaluation at or under the target; `—`: not reached.", "",
             header, "|---|---|---|---|---|---|---|---|---|---|"]
    for depth, interface, label, rate, ratio, target, reached, error, waits, wall in rows:
        shown = f"{reached:.1f}" if reached is not None else "—"
        lines.append(f"| {depth} | {interface} | {label} | {rate:.0f} | {ratio:.2f} | {target:g} | {shown} | {error:.1f} "
                     f"| {waits} | {wall:.1f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(curves, args, args.out.with_suffix(".png"))


def plot(curves: dict, args, png: Path) -> None:
    plt = pyplot()
    panels = sorted({(depth, interface) for depth, interface, _ in curves})
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for axis, (depth, interface) in zip(axes[0], panels):
        for (d, i, label), points in curves.items():
            if (d, i) == (depth, interface):
                axis.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=label)
        axis.axhline(args.target if interface == "cdni" else args.target_dni, color="grey", linewidth=0.8, linestyle=":")
        axis.set(title=f"MNIST FCN {depth} layers, {interface}", xlabel="wall time (s)", ylabel="test error (%)")
        axis.set_ylim(0, 60)
        axis.legend(fontsize=7)
    save_figure(figure, png, "Decoupled execution: test error against wall-clock time")


if __name__ == "__main__":
    main()
