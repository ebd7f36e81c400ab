"""Write results/copy_sg_search.md from the Copy runs of `make copy-sg-search` (issue #15's first look),
or the same report for any folder of Copy or Repeat Copy runs (`make table2-diagnostics`).

Per setting and seed: the longest task solved, and what the SG diagnostics said over the second
half of the run (explained share, M's cosine and norm ratio to its target, the gradient cosines
against BPTT over a 4-chunk window) and how large the cell state grew.
Usage: python scripts/make_copy_sg_search.py [--logs logs/copy_sg_search] [--out results/copy_sg_search.md]
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dni_repro.reports.figures import caption, load_runs  # noqa: E402

COLUMNS = ("train/sg_explained", "train/sg_explained_scored", "train/sg_explained_unscored",
           "train/sg_target_share_scored", "train/sg_cosine", "train/sg_norm_ratio", "grad/cosine_truncated",
           "grad/cosine_with_sg", "train/cell_abs_max")


# What the paper has for the task the runs are on, and how the result column counts.
PAPER_LINES = {
    "copy": "The paper (Table 2) has, at T=3, BPTT solve 8, DNI 14 and DNI+Aux 17 (T=2..5: BPTT 7-10, DNI 14-18, "
            "DNI+Aux 16-19). `longest task solved` is the curriculum's largest T_task = N + 3 for Copy of N symbols, "
            "the paper's count, with error under 0.15 bits.",
    "repeat_copy": "The paper (Table 2) has, at T=2..5, BPTT solve 7, 5, 19, 23, DNI 39, 33, 39, 59 and DNI+Aux 39, "
                   "59, 67, 59. `longest task solved` is the curriculum's largest T_task = N * R + 3 for N symbols "
                   "written R times, the paper's count, with error under 0.15 bits.",
}


def setting(run) -> str:
    config = run.config
    interface, peepholes = config["interface"], config["model"]["peepholes"]
    unroll = f"T={config['trainer']['bptt_length']}"
    if interface["name"] == "bptt":
        return f"bptt, {unroll}, peepholes={peepholes}"
    described = (f"{interface['name']}, {unroll}, sg_input={interface['sg_input']}, sg_target={interface['sg_target']}, "
                 f"sg_scale={interface['sg_scale']}, peepholes={peepholes}")
    # Options a later stage added, named only where a run sets them.
    if interface.get("sg_episode_reset"):
        described += ", sg_episode_reset=True"
    if config["optimizer"].get("sg_lr") is not None:
        described += f", sg_lr={config['optimizer']['sg_lr']:g}"
    return described


def late_means(run) -> dict:
    """Each diagnostic's mean over the logged lines of the second half of the run."""
    half = run.summary["steps"] / 2
    lines = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    means = {}
    for key in COLUMNS:
        values = [line[key] for line in lines if line["step"] > half and key in line]
        means[key] = sum(values) / len(values) if values else None
    return means


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=Path, default=Path("logs/copy_sg_search"))
    parser.add_argument("--out", type=Path, default=Path("results/copy_sg_search.md"))
    parser.add_argument("--title", default="Copy at T=3: the recurrent SG options (issue #15, first look)")
    args = parser.parse_args()
    runs = load_runs(args.logs, status=None) if args.logs.is_dir() else []
    if not runs:
        sys.exit(f"error: no runs under {args.logs}; run `make copy-sg-search` first")
    header = "| setting | seed | status | longest task solved | " + " | ".join(
        f"{key} (2nd half mean)" for key in COLUMNS) + " |"
    datasets = sorted({run.config["dataset"]["name"] for run in runs})
    lines = [f"# {args.title}", "", *(PAPER_LINES[name] for name in datasets if name in PAPER_LINES),
             "", f"Runs: {caption(runs)}", "", header,
             "|" + "---|" * (4 + len(COLUMNS))]
    for run in sorted(runs, key=lambda r: (setting(r), r.config["seed"])):
        # A diverged run's last lines describe the blow-up, not a setting that trained.
        means = late_means(run) if run.summary["status"] == "completed" else dict.fromkeys(COLUMNS)
        cells = " | ".join("—" if means[key] is None else f"{means[key]:.3g}" for key in COLUMNS)
        lines.append(f"| {setting(run)} | {run.config['seed']} | {run.summary['status']} "
                     f"| {run.summary.get('max_task_length_solved', '—')} | {cells} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out} from {len(runs)} runs")


if __name__ == "__main__":
    main()
