"""Read finished run folders back and turn them into tables and curves."""
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from dni_repro.paper_results import INTERFACE_TITLES, TABLE1, TABLE1_FAMILIES, TABLE1_INTERFACES
from dni_repro.run_record import METRICS_NAME, SUMMARY_NAME


@dataclass
class FinishedRun:
    run_dir: Path
    summary: dict

    @property
    def config(self) -> dict:
        return self.summary["config"]

    @property
    def label(self) -> str:
        model = self.config["model"]
        return f"{self.config['interface']['name']} {model['name']}{model['depth']}"

    def curve(self, key: str = "test/error") -> tuple[list[int], list[float]]:
        steps, values = [], []
        for line in (self.run_dir / METRICS_NAME).read_text().splitlines():
            entry = json.loads(line)
            if key in entry:
                steps.append(entry["step"])
                values.append(entry[key])
        return steps, values


def load_runs(root: Path, status: Optional[str] = "completed") -> list[FinishedRun]:
    runs = []
    for path in sorted(Path(root).rglob(SUMMARY_NAME)):
        summary = json.loads(path.read_text())
        if status is None or summary["status"] == status:
            runs.append(FinishedRun(path.parent, summary))
    return runs


def write_report(out_dir: Path, names: tuple[str, ...], markdown: str, figures) -> str:
    """Write the markdown to names[0] and each figure (a callable taking a path) to the names after it.

    Returns the written paths as one comma-separated string, for the script's closing line."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / names[0]).write_text(markdown)
    for figure, name in zip(figures, names[1:], strict=True):
        figure(out_dir / name)
    return ", ".join(str(out_dir / name) for name in names)


def caption(runs: list[FinishedRun]) -> str:
    """The labels every published number carries, as one line."""

    def values(read) -> str:
        return ", ".join(sorted({str(read(run)) for run in runs}))

    return (
        f"dataset: {values(lambda r: r.config['dataset']['name'])}; "
        f"profile: {values(lambda r: r.summary['provenance']['profile'])}; "
        f"steps: {values(lambda r: r.summary['steps'])}; seed: {values(lambda r: r.config['seed'])}; "
        f"device: {values(lambda r: r.summary['provenance']['device'])}; "
        f"date: {values(lambda r: r.summary['provenance']['date'][:10])}; "
        f"commit: {values(lambda r: r.summary['provenance']['git_commit'])}"
    )


def comparison_table(runs: list[FinishedRun]) -> str:
    header = "| run | dataset | profile | steps | final test error (%) | best test error (%) | wall time (s) |"
    rows = [header, "|" + "---|" * 7]
    for run in runs:
        s = run.summary
        rows.append(
            f"| {run.label} | {run.config['dataset']['name']} | {s['provenance']['profile']} | {s['steps']} "
            f"| {s['test_error']:.2f} | {s['best'].get('test/error', float('nan')):.2f} | {s['wall_time_s']:.0f} |"
        )
    return "\n".join(rows)


def plot_curves(panels: dict[str, list[FinishedRun]], png: Path, title: str) -> None:
    """One panel per key of `panels`, one test-error line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import FormatStrFormatter

    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False, sharey=True)
    for axis, (panel_title, runs) in zip(axes[0], panels.items()):
        for run in runs:
            steps, errors = run.curve()
            axis.plot(steps, errors, label=INTERFACE_TITLES.get(run.config["interface"]["name"], run.label))
        axis.set_title(panel_title, fontsize=10)
        axis.set_xlabel("step")
        axis.set_yscale("log")
        for axis_formatter in (axis.yaxis.set_major_formatter, axis.yaxis.set_minor_formatter):
            axis_formatter(FormatStrFormatter("%g"))
        axis.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("test error (%)")
    handles, names = axes[0][-1].get_legend_handles_labels()
    figure.legend(handles, names, loc="lower center", ncol=max(len(names), 1), fontsize=9)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=120)
    plt.close(figure)


def table1_cells(runs: list[FinishedRun]) -> dict[tuple, list[FinishedRun]]:
    """(dataset, model, depth, interface) -> the newest completed run of each seed in that cell."""
    newest: dict[tuple, FinishedRun] = {}
    for run in sorted(runs, key=lambda r: r.summary["provenance"]["date"]):
        dataset = run.config["dataset"]["name"]
        if dataset not in TABLE1_FAMILIES:
            continue
        model = run.config["model"]
        cell = (dataset, model["name"], model["depth"], run.config["interface"]["name"])
        newest[(cell, run.config["seed"])] = run
    cells: dict[tuple, list[FinishedRun]] = {}
    for (cell, _), run in sorted(newest.items(), key=lambda item: str(item[0])):
        cells.setdefault(cell, []).append(run)
    return cells


def format_errors(runs: list[FinishedRun]) -> str:
    """One run: its final error. Several seeds: mean ± sample standard deviation."""
    errors = [run.summary["test_error"] for run in runs]
    if len(errors) == 1:
        return f"{errors[0]:.1f}"
    mean = sum(errors) / len(errors)
    spread = (sum((e - mean) ** 2 for e in errors) / (len(errors) - 1)) ** 0.5
    return f"{mean:.1f} ± {spread:.1f} (n={len(errors)})"


def table1_markdown(runs: list[FinishedRun]) -> str:
    cells = table1_cells(runs)
    lines = [
        "# Table 1: final test error (%), reproduced beside Jaderberg et al. 2016",
        "",
        "Generated by `scripts/make_table1.py` from run folders; \"—\" marks a cell not run.",
        "A cell run with several seeds shows mean ± standard deviation over seeds.",
        "Every reproduced number comes from the runs listed under Provenance.",
    ]
    sections = []
    for family in ("MNIST", "CIFAR-10"):
        used = sorted({key[0] for key in cells if TABLE1_FAMILIES[key[0]] == family})
        sections += [(family, dataset) for dataset in used] or [(family, None)]
    for family, dataset in sections:
        lines += ["", f"## {family}" + (f", reproduced on `{dataset}`" if dataset else " (not run)"), ""]
        header = "| model | layers |"
        for interface in TABLE1_INTERFACES:
            header += f" {INTERFACE_TITLES[interface]} reproduced | {INTERFACE_TITLES[interface]} paper |"
        lines += [header, "|" + "---|" * (2 + 2 * len(TABLE1_INTERFACES))]
        for (paper_family, model, depth), paper in TABLE1.items():
            if paper_family != family:
                continue
            row = f"| {model.upper()} | {depth} |"
            for interface in TABLE1_INTERFACES:
                group = cells.get((dataset, model, depth, interface))
                row += f" {format_errors(group) if group else '—'} | {paper[interface]} |"
            lines.append(row)
    lines += ["", "## Provenance", ""]
    lines += ["| cell | seed | test error (%) | dataset | profile | steps | device | date (UTC) | commit | run folder |"]
    lines.append("|" + "---|" * 10)
    for (dataset, model, depth, interface), group in sorted(cells.items()):
        for run in group:
            p = run.summary["provenance"]
            lines.append(
                f"| {TABLE1_FAMILIES[dataset]} {model.upper()}{depth} {INTERFACE_TITLES[interface]} | {p['seed']} "
                f"| {run.summary['test_error']:.1f} | {dataset} | {p['profile']} "
                f"| {run.summary['steps']} | {p['device']} | {p['date']} | {p['git_commit']} "
                f"| {run.run_dir.parent.name}/{run.run_dir.name} |"
            )
    return "\n".join(lines) + "\n"
