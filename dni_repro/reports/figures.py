"""What every report shares: finished runs read back from disk, their provenance caption,
run selection (newest per setting, seeds per setting), markdown helpers and matplotlib figures.

Reports read only what runs leave in their folders, so a report can be rebuilt without
retraining and cannot change a result.
"""
import json
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from dni_repro.reports.paper_results import INTERFACE_TITLES
from dni_repro.runs.record import METRICS_NAME, SUMMARY_NAME


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


def format_errors(runs: list[FinishedRun]) -> str:
    """One run: its final error. Several seeds: mean ± sample standard deviation."""
    errors = [run.summary["test_error"] for run in runs]
    if len(errors) == 1:
        return f"{errors[0]:.1f}"
    mean = sum(errors) / len(errors)
    spread = (sum((e - mean) ** 2 for e in errors) / (len(errors) - 1)) ** 0.5
    return f"{mean:.1f} ± {spread:.1f} (n={len(errors)})"


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


Figure = Callable[[Path], None]


def newest_per(runs: list[FinishedRun], key: Callable[[FinishedRun], object]) -> dict:
    """setting -> the newest run with that setting (key returns None to leave a run out)."""
    chosen = {}
    for run in sorted(runs, key=lambda r: r.summary["provenance"]["date"]):
        setting = key(run)
        if setting is not None:
            chosen[setting] = run
    return dict(sorted(chosen.items(), key=lambda item: str(item[0])))


def seeds_per(runs: list[FinishedRun], key: Callable[[FinishedRun], object]) -> dict:
    """setting -> the newest run of each seed with that setting, lowest seed first."""
    chosen = newest_per(runs, lambda r: None if key(r) is None else (key(r), r.config["seed"]))
    grouped: dict = {}
    for (setting, _), run in sorted(chosen.items(), key=lambda item: (str(item[0][0]), item[0][1] or 0)):
        grouped.setdefault(setting, []).append(run)
    return grouped


def mean_error(runs: list[FinishedRun]) -> float:
    return sum(run.summary["test_error"] for run in runs) / len(runs)


def error_at(run: FinishedRun, step: int):
    """Test error at the last evaluation at or before `step` (None if there is none)."""
    measured = [(s, e) for s, e in zip(*run.curve()) if s <= step]
    return measured[-1][1] if measured else None


def provenance_table(described: list[tuple[str, FinishedRun]]) -> list[str]:
    lines = ["## Provenance", "", "| setting | test error (%) | dataset | profile | steps | device | date (UTC) | commit | run folder |"]
    lines.append("|" + "---|" * 9)
    for setting, run in described:
        p = run.summary["provenance"]
        lines.append(
            f"| {setting} | {run.summary['test_error']:.1f} | {run.config['dataset']['name']} | {p['profile']} "
            f"| {run.summary['steps']} | {p['device']} | {p['date']} | {p['git_commit']} "
            f"| {run.run_dir.parent.name}/{run.run_dir.name} |"
        )
    return lines


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plain_log_ticks(axis) -> None:
    """Log-scaled y axis labelled 2, 5, 10 rather than 2x10^0."""
    from matplotlib.ticker import FormatStrFormatter

    axis.set_yscale("log")
    axis.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    axis.yaxis.set_minor_formatter(FormatStrFormatter("%g"))


def save_figure(figure, png: Path, title: str) -> None:
    # Provenance captions run longer than the figure is wide: wrap at about 15 characters of 8-point
    # text per inch of width; tight_layout then makes room for the wrapped lines.
    figure.suptitle(textwrap.fill(title, width=int(15 * figure.get_figwidth())), fontsize=8)
    figure.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=120)
    pyplot().close(figure)
