"""Czarnecki et al. 2017, experiment B: train, measure each layer's implied loss, write the markdown and PNG.

One run on the embedded MNIST digits, on the CPU with one thread (a few minutes).
Usage: python scripts/make_czarnecki_loss_approximation.py [--seed 0] [--steps 6000]
       [--out results/czarnecki_loss_approximation.md] [--png results/czarnecki_loss_approximation.png]
"""
import argparse
import datetime
import math
import sys
import textwrap
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dni_repro.config import REPO_ROOT  # noqa: E402
from dni_repro.czarnecki.loss_approximation import Setup, TrainingRecord, checkpoint_steps, pearson, train  # noqa: E402
from dni_repro.data.mnist_family import load_mnist_5k  # noqa: E402
from dni_repro.runs.provenance import commit_of_this_process  # noqa: E402
from dni_repro.runs.runtime import device_description  # noqa: E402
from dni_repro.reports.figures import pyplot, save_figure  # noqa: E402

# "Closer to the loss is better" holds at a checkpoint when the layers' correlations rank like
# their depths: Spearman rho >= 0.9, i.e. at most one adjacent pair of the five out of order.
ORDERED_RHO = 0.9
# "Best at the start": a layer's best correlation comes within this fraction of the run.
START_FRACTION = 0.1


def table(record: TrainingRecord, setup: Setup, radius: float, cell) -> list[str]:
    """One row per checkpoint, one column per layer, `cell(row)` in each."""
    layers = range(1, setup.hidden_layers + 1)
    lines = ["| step | probe loss | " + " | ".join(f"layer {layer}" for layer in layers) + " |"]
    lines.append("|" + "---|" * (2 + setup.hidden_layers))
    for step in sorted(record.probe_loss):
        cells = [cell(row) for row in rows_at(record, step, radius)]
        lines.append(f"| {step} | {record.probe_loss[step]:.3f} | " + " | ".join(cells) + " |")
    return lines


def rows_at(record: TrainingRecord, step: int, radius: float) -> list[dict]:
    return sorted((r for r in record.rows if r["step"] == step and r["radius"] == radius), key=lambda r: r["layer"])


def series(record: TrainingRecord, layer: int, radius: float, key: str) -> tuple[list[int], list[float]]:
    chosen = sorted((r for r in record.rows if r["layer"] == layer and r["radius"] == radius), key=lambda r: r["step"])
    return [r["step"] for r in chosen], [r[key] for r in chosen]


def finite_mean(values: list[float]) -> float:
    """Mean over the measured values; a still-zero SG scores NaN and is left out."""
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


def pair(correlation: float, error: float) -> str:
    return "—" if math.isnan(correlation) else f"{correlation:.3f} / {error:.2f}"


def spearman(values: list[float]) -> float:
    """Rank correlation of `values` with their positions (layer 1, 2, ...); NaN if any value is."""
    if any(math.isnan(v) for v in values):
        return math.nan
    ranks = torch.tensor(values).argsort().argsort().double()
    return pearson(ranks, torch.arange(len(values), dtype=torch.double))


def steps_list(steps: list[int]) -> str:
    return f" (steps {', '.join(str(s) for s in steps)})" if steps else ""


def verdict(count: int, total: int) -> str:
    if total == 0:
        return "not measured"
    return "yes" if count == total else "no" if count == 0 else "partly"


def closeness_finding(record: TrainingRecord, setup: Setup, radius: float) -> str:
    ordered, reversed_, rhos = [], [], []
    for step in sorted(record.probe_loss):
        rho = spearman([r["implied_correlation"] for r in rows_at(record, step, radius)])
        if math.isnan(rho):
            continue
        rhos.append(rho)
        if rho >= ORDERED_RHO:
            ordered.append(step)
        elif rho <= -ORDERED_RHO:
            reversed_.append(step)
    means = [finite_mean(series(record, layer, radius, "implied_correlation")[1])
             for layer in range(1, setup.hidden_layers + 1)]
    return (
        f"- radius {radius}: holds here: **{verdict(len(ordered), len(rhos))}**. The layers' r rank like their "
        f"closeness to the loss (Spearman ≥ {ORDERED_RHO}) at {len(ordered)} of {len(rhos)} checkpoints"
        f"{steps_list(ordered)} and in reverse (≤ −{ORDERED_RHO}) at {len(reversed_)}{steps_list(reversed_)}. "
        f"Mean r over checkpoints, layer 1 to {setup.hidden_layers}: {', '.join(f'{m:.2f}' for m in means)}."
    )


def start_finding(record: TrainingRecord, setup: Setup, radius: float) -> list[str]:
    """Per layer: where its r peaks, what is left at the end, when it first falls below half its peak."""
    table_lines = ["| layer | best r | at step | final r | below half its best from step |", "|---|---|---|---|---|"]
    early = slow = 0
    for layer in range(1, setup.hidden_layers + 1):
        steps, values = series(record, layer, radius, "implied_correlation")
        best = max(range(len(values)), key=lambda k: -math.inf if math.isnan(values[k]) else values[k])
        halved = next((steps[k] for k in range(best, len(values)) if values[k] < values[best] / 2), None)
        early += steps[best] <= START_FRACTION * setup.steps
        slow += halved is None
        table_lines.append(f"| {layer} | {values[best]:.3f} | {steps[best]} | {values[-1]:.3f} "
                           f"| {'never' if halved is None else halved} |")
    holds = "yes" if early == slow == setup.hidden_layers else "no" if early == 0 else "partly"
    summary = (
        f"- radius {radius}: holds here: **{holds}**. r peaks in the first {START_FRACTION:.0%} of the run "
        f"(step ≤ {START_FRACTION * setup.steps:g}) for {early} of {setup.hidden_layers} layers and stays above "
        f"half its peak to the end for {slow}."
    )
    steps = sorted(record.probe_loss)
    if len(steps) > 1:
        mean_by_step = [finite_mean([r["implied_correlation"] for r in rows_at(record, step, radius)])
                        for step in steps]
        fall = min(range(1, len(steps)), key=lambda k: mean_by_step[k] - mean_by_step[k - 1])
        summary += (
            f" The mean r over layers falls most between steps {steps[fall - 1]} and {steps[fall]} "
            f"({mean_by_step[fall - 1]:.3f} to {mean_by_step[fall]:.3f}), while the probe loss goes from "
            f"{record.probe_loss[steps[fall - 1]]:.3f} to {record.probe_loss[steps[fall]]:.3f}."
        )
    return [summary, "", *table_lines, ""]


def first_order_reference(record: TrainingRecord, setup: Setup) -> str:
    """How far from first order the true loss is at each radius: the worst score of the true gradient's ∇ℓ·δ."""
    parts = []
    for radius in setup.radii:
        rows = [r for r in record.rows if r["radius"] == radius]
        parts.append(f"radius {radius}: r ≥ {min(r['true_linear_correlation'] for r in rows):.3f}, "
                     f"err ≤ {max(r['true_linear_error'] for r in rows):.3f}")
    return ("How far from first order the true loss is: the true gradient's own prediction ∇ℓ·δ scores, "
            "at its worst over layers and checkpoints, " + "; ".join(parts) + ".")


def markdown(record: TrainingRecord, setup: Setup, labels: dict) -> str:
    small = min(setup.radii)
    lines = [
        "# Czarnecki et al. 2017, experiment B: how well each layer's synthetic gradient approximates the loss",
        "",
        "Generated by `scripts/make_czarnecki_loss_approximation.py` from one training run, measured while it trains.",
        f"A ReLU network with {setup.hidden_layers} hidden layers learns with a linear, label-conditioned SG",
        "g(h, y) = h A + y B + c after every hidden layer (bootstrapped targets, as in Jaderberg et al. 2016).",
        "The SG's implied loss is the quadratic whose gradient is the SG with A replaced by its symmetric part",
        "A_s = (A + Aᵀ)/2: L̂(h, y) = N (½ h A_s hᵀ + (y B + c) hᵀ), with N the batch size, because the SG",
        "regresses the gradient of the batch-mean loss, 1/N of each example's. L̂ is known only up to a constant",
        "per label, so it is compared with the true loss through changes: each probe digit's activation h gets",
        f"{setup.perturbations} random perturbations δ of norm radius × ‖h‖ (directions uniform on the sphere,",
        "the same at every checkpoint), and ΔL̂ = L̂(h + δ, y) − L̂(h, y) is set against ΔL, the change of",
        "that digit's cross-entropy through the real layers above.",
        f"Layer 1 is next to the input, layer {setup.hidden_layers} next to the classifier (closest to the loss).",
        f"Each cell is r / err over the {labels['probe_size']} × {setup.perturbations} (digit, δ) pairs: r is the",
        "Pearson correlation of ΔL̂ with ΔL, err = ‖ΔL̂ − ΔL‖ / ‖ΔL‖ (1 is what predicting no change scores).",
        "The probe loss is the connected network's mean cross-entropy on the probe digits.",
        "The paper prints no numbers for this experiment, only the two findings compared at the end; its network",
        "width, optimiser, training length and way of measuring are not known here, so all of those are this",
        "suite's choices.",
        "",
        f"Setup: {setup.hidden_layers} hidden layers of {setup.width} units (linear, ReLU; no batch norm), linear",
        f"classifier, cross-entropy; linear conditioned SG per hidden layer; Adam lr {setup.lr} on the network",
        f"and the SGs; batch {setup.batch_size}, drawn with replacement; probe: the first {setup.probe_per_class}",
        f"test digits of each class; radii {', '.join(str(r) for r in setup.radii)}; checkpoints log-spaced from",
        f"step {setup.first_checkpoint} (a fresh SG is zero, and layer i's SG gets a nonzero bootstrapped target only",
        "after the SGs above it have moved).",
        "",
        f"Run: dataset: mnist_5k; steps: {setup.steps}; seed: {labels['seed']}; device: {labels['device']}; "
        f"date (UTC): {labels['date']}; commit: {labels['commit']}; wall time: {labels['wall_time']:.0f} s; "
        f"final test error (connected network, all {labels['test_size']} test digits): {record.final_test_error:.1f}%",
    ]
    for radius in setup.radii:
        lines += ["", f"## Implied loss against the true loss, radius {radius} (r / err)", ""]
        lines += table(record, setup, radius, lambda r: pair(r["implied_correlation"], r["implied_error"]))
    lines += [
        "",
        f"## Diagnostics, radius {small}",
        "",
        "The SG's own first-order prediction g(h, y)·δ (scaled by N), which keeps the antisymmetric part of A that",
        "the implied loss drops (r / err):",
        "",
    ]
    lines += table(record, setup, small, lambda r: pair(r["sg_linear_correlation"], r["sg_linear_error"]))
    lines += ["", "Asymmetry of A, ‖A − A_s‖ / ‖A‖ (0: symmetric, about 0.71 for a random matrix):", ""]
    lines += table(record, setup, small, lambda r: "—" if math.isnan(r["asymmetry"]) else f"{r['asymmetry']:.2f}")
    lines += ["", first_order_reference(record, setup)]
    lines += ["", "## What the runs show", "",
              "Finding 1 of the paper: the approximation is better in layers closer to the loss.", ""]
    lines += [closeness_finding(record, setup, radius) for radius in setup.radii]
    lines += ["", "Finding 2 of the paper: the approximation is best at the start of training and degrades slowly.", ""]
    for radius in setup.radii:
        lines += start_finding(record, setup, radius)
    return "\n".join(lines).rstrip("\n") + "\n"


def plot(record: TrainingRecord, setup: Setup, png: Path, title: str) -> None:
    plt = pyplot()
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    figure, axes = plt.subplots(len(setup.radii), 2, figsize=(10, 3.6 * len(setup.radii)), sharex=True, squeeze=False)
    colours = plt.get_cmap("viridis")
    for row, radius in enumerate(setup.radii):
        for column, (key, label) in enumerate((("implied_correlation", "correlation r of ΔL̂ with ΔL"),
                                               ("implied_error", "‖ΔL̂ − ΔL‖ / ‖ΔL‖"))):
            axis = axes[row][column]
            for layer in range(1, setup.hidden_layers + 1):
                steps, values = series(record, layer, radius, key)
                axis.plot(steps, values, marker=".", linewidth=1.2, label=f"layer {layer}",
                          color=colours((layer - 1) / max(setup.hidden_layers - 1, 1)))
            axis.set_xscale("log")
            log_axes = [axis.xaxis]
            if key == "implied_error":
                # Errors span orders of magnitude; 1 is what predicting no change scores.
                axis.set_yscale("log")
                axis.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
                log_axes.append(axis.yaxis)
            for log_axis in log_axes:  # decades only, as plain numbers
                log_axis.set_major_formatter(FormatStrFormatter("%g"))
                log_axis.set_minor_formatter(NullFormatter())
            axis.set_title(f"radius {radius}", fontsize=9)
            axis.set_ylabel(label)
            axis.grid(True, which="both", alpha=0.3)
    for axis in axes[-1]:
        axis.set_xlabel("training step")
    axes[0][-1].legend(fontsize=7, title=f"1: input side\n{setup.hidden_layers}: next to the loss", title_fontsize=7,
                       loc="upper left", bbox_to_anchor=(1.02, 1.0))
    save_figure(figure, png, textwrap.fill(title, width=110))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=Setup.steps)
    parser.add_argument("--out", type=Path, default=Path("results/czarnecki_loss_approximation.md"))
    parser.add_argument("--png", type=Path, default=Path("results/czarnecki_loss_approximation.png"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    setup = Setup(steps=args.steps)
    dataset = load_mnist_5k()
    print(f"training {setup.steps} steps, measuring after{steps_list(checkpoint_steps(setup))}")
    started = time.perf_counter()
    record = train(dataset, setup, args.seed)
    labels = {
        "seed": args.seed,
        "device": device_description(torch.device("cpu")),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit_of_this_process(REPO_ROOT),
        "wall_time": time.perf_counter() - started,
        "test_size": len(dataset.test),
        "probe_size": setup.probe_per_class * dataset.num_classes,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(record, setup, labels))
    title = (f"Czarnecki et al. 2017 exp. B: implied loss of each layer's linear cDNI vs the true loss — mnist_5k; "
             f"steps: {setup.steps}; seed: {args.seed}; {labels['device']}; {labels['date'][:10]}; "
             f"commit {labels['commit']}")
    plot(record, setup, args.png, title)
    print(f"wrote {args.out} and {args.png} ({labels['wall_time']:.0f} s)")


if __name__ == "__main__":
    main()
