"""The SG-model search of appendix A.1, read back from its trials' run folders.

Each trial of `hparams_search=sg_search` is an ordinary run, so the report reads the run
folders of one study (logs/<study>/multiruns/...) like any other report; the Optuna study
itself only decides which settings run next.
"""
import math
from pathlib import Path

from dni_repro.reports import paper_results as paper
from dni_repro.reports.figures import Figure, FinishedRun, caption, pyplot, save_figure

DEPTHS = (0, 1, 2)


def trial_setting(run: FinishedRun) -> tuple[int, int, float]:
    config = run.config
    return config["interface"]["sg"]["hidden_layers"], config["interface"]["sg"]["hidden_width"], config["optimizer"]["lr"]


def _number(value) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"


def best_per_depth(runs: list[FinishedRun]) -> dict[int, FinishedRun]:
    """Completed trials only: the lowest validation error at each SG depth."""
    best: dict[int, FinishedRun] = {}
    for run in runs:
        if run.summary["status"] != "completed":
            continue
        depth = trial_setting(run)[0]
        if depth not in best or run.summary["val_error"] < best[depth].summary["val_error"]:
            best[depth] = run
    return dict(sorted(best.items()))


def column_markdown(interface: str, runs: list[FinishedRun]) -> list[str]:
    """One searched column: its trials in the order they ran, then the best depth against the paper's."""
    runs = sorted(runs, key=lambda r: r.summary["provenance"]["date"])
    title = paper.INTERFACE_TITLES[interface]
    failed = sum(run.summary["status"] != "completed" for run in runs)
    lines = [f"## {title}", "", f"{len(runs)} trials ({failed} failed or diverged).", "",
             "| trial | SG hidden layers | SG width | lr | status | val error (%) | test error (%) |",
             "|---|---|---|---|---|---|---|"]
    for number, run in enumerate(runs):
        layers, width, lr = trial_setting(run)
        s = run.summary
        lines.append(f"| {number} | {layers} | {width} | {lr:.2e} | {s['status']} | {_number(s.get('val_error'))} "
                     f"| {_number(s.get('test_error'))} |")
    best = best_per_depth(runs)
    lines += ["", "| SG hidden layers | best val error (%) | its test error (%) | width | lr |", "|---|---|---|---|---|"]
    for depth, run in best.items():
        _, width, lr = trial_setting(run)
        lines.append(f"| {depth} | {run.summary['val_error']:.2f} | {run.summary['test_error']:.2f} | {width} | {lr:.2e} |")
    chosen = min(best, key=lambda d: best[d].summary["val_error"]) if best else None
    paper_depth = paper.SG_HIDDEN_LAYERS_CHOSEN[("MNIST", "fcn", interface)]
    lines += ["", "| | SG hidden layers |", "|---|---|",
              f"| paper's choice (A.1, selected on test error) | {paper_depth} |",
              f"| ours (selected on val error) | {chosen if chosen is not None else '—'} |", ""]
    if chosen is not None:
        examples = best[chosen].summary["validation"]["examples"]
        error = best[chosen].summary["val_error"] / 100
        spread = 100 * math.sqrt(error * (1 - error) / examples)
        runner_up = sorted(run.summary["val_error"] for run in best.values())[1:2]
        margin = f"{runner_up[0] - best[chosen].summary['val_error']:.2f} points" if runner_up else "no other depth"
        lines += [f"On {examples} validation examples an error near {100 * error:.1f}% has a standard error of "
                  f"{spread:.2f} points (binomial); the chosen depth leads the next best by {margin}, from one "
                  "seed per trial.", ""]
    return lines


def search_report(columns: dict[str, list[FinishedRun]]) -> tuple[str, Figure]:
    everything = [run for runs in columns.values() for run in runs]
    first = everything[0]
    validation = first.summary.get("validation", {})
    lines = [
        "# SG-model search (appendix A.1): hidden layers 0-2, width and learning rate", "",
        f"Optuna TPE over `interface.sg.hidden_layers` {{0, 1, 2}}, `interface.sg.hidden_width` {{256, 512, 1024}} "
        "and `optimizer.lr` (log-uniform in [1e-4, 3e-3]), one study per column "
        f"({first.config['model']['name']}{first.config['model']['depth']}). Each trial is scored on "
        f"`val/error`: {validation.get('examples')} training examples held out by seed {validation.get('seed')}, "
        f"leaving {validation.get('train_examples')} to train on. The paper selected on test error; the test "
        "error here is shown, never used to choose.", "",
        f"Runs: {caption(everything)}", "",
    ]
    for interface, runs in columns.items():
        lines += column_markdown(interface, runs)

    def plot(png: Path) -> None:
        plt = pyplot()
        figure, axes = plt.subplots(len(columns), 2, figsize=(9, 3.4 * len(columns)), squeeze=False)
        colours = {0: "tab:blue", 1: "tab:orange", 2: "tab:green"}
        for row, (interface, runs) in enumerate(columns.items()):
            runs = sorted(runs, key=lambda r: r.summary["provenance"]["date"])
            title = paper.INTERFACE_TITLES[interface]
            by_trial, by_depth = axes[row]
            for number, run in enumerate(runs):
                if run.summary["status"] == "completed":
                    depth = trial_setting(run)[0]
                    by_trial.scatter(number, run.summary["val_error"], color=colours[depth], s=22)
                    by_depth.scatter(depth, run.summary["val_error"], color=colours[depth], s=22, alpha=0.7)
                else:
                    by_trial.axvline(number, color="grey", alpha=0.3, linestyle=":")
            for depth, colour in colours.items():
                by_trial.scatter([], [], color=colour, label=f"{depth} hidden")
            by_trial.set_title(f"{title}: val error per trial (dotted: failed)", fontsize=9)
            by_trial.set_xlabel("trial")
            by_trial.set_ylabel("val error (%)")
            by_trial.legend(fontsize=8)
            by_depth.set_title(f"{title}: val error per SG depth", fontsize=9)
            by_depth.set_xticks(DEPTHS)
            by_depth.set_xlabel("SG hidden layers")
            for axis in (by_trial, by_depth):
                axis.grid(True, alpha=0.3)
        save_figure(figure, png, caption(everything))

    return "\n".join(lines) + "\n", plot
