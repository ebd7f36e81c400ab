"""Deep MNIST nets, backprop against one mid-stack SG (Czarnecki et al. 2017, section 4): tables and figures.

Reads finished feed-forward runs (see `reports.load_runs`), rebuilds each
network from its last checkpoint, and measures learning curves, per-layer RDMs
on a class-sorted probe set and per-layer weight norms. The paper prints no
numbers for this experiment; its findings are quoted beside ours.
"""
from dataclasses import dataclass
from pathlib import Path

import torch

from dni_repro.reports.figures import FinishedRun, caption, error_at, newest_per, pyplot, save_figure
from dni_repro.reports.studies import interface_of
from dni_repro.czarnecki.representations import (
    dissimilarity_matrix,
    layer_outputs,
    load_trained_network,
    weight_norms,
)

FINDINGS = {
    "curves": "SG models train well even with many hidden layers, often faster than backprop",
    "rdm": "backprop layers' RDMs look alike and like the last layer's; SG layers' are scattered and differ",
    "norms": "backprop weight norms rise slowly with depth; SG norms start high and fall towards the output",
}


@dataclass
class DeepRun:
    run: FinishedRun
    activation: str
    hidden_layers: int
    method: str  # "bprop" or "sg"
    sg_after: int  # the SG sits after this hidden layer (0: none)
    norms: list[float]  # per layer, classifier last
    rdms: list[torch.Tensor]  # per hidden layer

    @property
    def title(self) -> str:
        where = f", SG after layer {self.sg_after}" if self.method == "sg" else ""
        return f"{'Bprop' if self.method == 'bprop' else 'SG'} ({self.activation}{where})"


def deep_setting(run: FinishedRun):
    """(activation, hidden layers, method) for a bprop run or a run with one SG position; None for others."""
    interface, model = interface_of(run), run.config["model"]
    if model["name"] != "fcn":
        return None
    activation = model.get("activation", "relu")
    if interface["name"] == "bprop":
        return activation, model["depth"] - 1, "bprop"
    if interface["name"] in ("dni", "cdni") and interface["positions"] is not None and len(interface["positions"]) == 1:
        return activation, model["depth"] - 1, "sg"
    return None


def measure(run: FinishedRun, probe_inputs: torch.Tensor, input_shape, num_classes: int) -> DeepRun:
    activation, hidden_layers, method = deep_setting(run)
    net = load_trained_network(run.run_dir, run.config, input_shape, num_classes)
    hidden = layer_outputs(net, probe_inputs)[:-1]
    positions = interface_of(run)["positions"]
    return DeepRun(
        run, activation, hidden_layers, method, positions[0] if method == "sg" else 0,
        weight_norms(net), [dissimilarity_matrix(h) for h in hidden],
    )


def rdm_agreement(first: torch.Tensor, second: torch.Tensor) -> float:
    """Pearson correlation of two RDMs' upper triangles (1: the layers see the probe set alike)."""
    rows, cols = torch.triu_indices(len(first), len(first), offset=1)
    a, b = first[rows, cols], second[rows, cols]
    a, b = a - a.mean(), b - b.mean()
    return (a @ b / (a.norm() * b.norm()).clamp_min(1e-12)).item()


def similarity_to_last(deep: DeepRun) -> list[float]:
    return [rdm_agreement(rdm, deep.rdms[-1]) for rdm in deep.rdms]


def norm_trend(deep: DeepRun) -> float:
    """Mean weight norm of the top half of the hidden layers over that of the bottom half (>1: rising)."""
    hidden = deep.norms[:-1]
    half = len(hidden) // 2
    return (sum(hidden[-half:]) / half) / (sum(hidden[:half]) / half)


def report(deep_runs: list[DeepRun], probe_per_class: int) -> tuple[str, list]:
    deep_runs = sorted(deep_runs, key=lambda d: (d.activation, d.hidden_layers, d.method))
    used = [d.run for d in deep_runs]
    lines = [
        "# Deep MNIST nets: backprop against one SG in the middle of the hidden stack (Czarnecki et al. 2017, sec. 4)",
        "",
        f"{caption(used)}." if used else "No runs yet: `make czarnecki-mnist`.",
        "",
        "Hidden layers are (linear, batch norm, activation); the SG is a linear label-conditioned model",
        "(cDNI) after the middle hidden layer, Bprop everywhere else. RDMs use "
        f"{probe_per_class} test images per class, sorted by class. The paper prints no numbers here.",
        "",
        "| activation | hidden layers | method | final test error (%) | error at 25% of the run (%) "
        "| RDM agreement with the last hidden layer, mean over layers | top-half / bottom-half weight norm |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in deep_runs:
        quarter = error_at(d.run, d.run.summary["steps"] // 4)
        agreement = similarity_to_last(d)[:-1]
        lines.append(
            f"| {d.activation} | {d.hidden_layers} | {d.title} | {d.run.summary['test_error']:.1f} "
            f"| {'—' if quarter is None else f'{quarter:.1f}'} | {sum(agreement) / len(agreement):.2f} "
            f"| {norm_trend(d):.2f} |"
        )
    lines += ["", "| finding of the paper | what these runs show |", "|---|---|"]
    lines += _findings(deep_runs)
    lines += ["", "## Provenance", "", "| run | dataset | profile | steps | device | date (UTC) | commit | run folder |"]
    lines.append("|" + "---|" * 8)
    for d in deep_runs:
        p = d.run.summary["provenance"]
        lines.append(
            f"| {d.title}, {d.hidden_layers} hidden | {d.run.config['dataset']['name']} | {p['profile']} "
            f"| {d.run.summary['steps']} | {p['device']} | {p['date']} | {p['git_commit']} "
            f"| {d.run.run_dir.parent.name}/{d.run.run_dir.name} |"
        )
    return "\n".join(lines) + "\n", [
        lambda png: _plot_curves(deep_runs, png, caption(used)),
        lambda png: _plot_rdms(deep_runs, png, caption(used)),
        lambda png: _plot_norms(deep_runs, png, caption(used)),
    ]


def _pairs(deep_runs: list[DeepRun]) -> list[tuple[DeepRun, DeepRun]]:
    by_setting = {(d.activation, d.hidden_layers, d.method): d for d in deep_runs}
    return [
        (by_setting[(a, h, "bprop")], by_setting[(a, h, "sg")])
        for (a, h, m) in by_setting
        if m == "bprop" and (a, h, "sg") in by_setting
    ]


def _findings(deep_runs: list[DeepRun]) -> list[str]:
    pairs = _pairs(deep_runs)
    if not pairs:
        return [f"| {text} | needs a Bprop and an SG run of the same depth |" for text in FINDINGS.values()]

    def describe(measure, fmt) -> str:
        return "; ".join(f"{b.activation} {b.hidden_layers}: Bprop {fmt(measure(b))}, SG {fmt(measure(s))}" for b, s in pairs)

    faster = sum(error_at(s.run, s.run.summary["steps"] // 4) < error_at(b.run, b.run.summary["steps"] // 4) for b, s in pairs)
    scattered = sum(_mean_agreement(s) < _mean_agreement(b) for b, s in pairs)
    falling = sum(norm_trend(s) < norm_trend(b) for b, s in pairs)
    return [
        f"| {FINDINGS['curves']} | SG ahead at 25% of the run in {faster} of {len(pairs)} pairs; final error "
        + describe(lambda d: d.run.summary["test_error"], lambda v: f"{v:.1f}%") + " |",
        f"| {FINDINGS['rdm']} | SG layers agree less with the last layer in {scattered} of {len(pairs)} pairs; "
        + describe(_mean_agreement, lambda v: f"{v:.2f}") + " |",
        f"| {FINDINGS['norms']} | SG's norm trend is lower in {falling} of {len(pairs)} pairs (top/bottom ratio) "
        + describe(norm_trend, lambda v: f"{v:.2f}") + " |",
    ]


def _mean_agreement(deep: DeepRun) -> float:
    agreement = similarity_to_last(deep)[:-1]
    return sum(agreement) / len(agreement)


def _plot_curves(deep_runs: list[DeepRun], png: Path, title: str) -> None:
    plt = pyplot()
    depths = sorted({d.hidden_layers for d in deep_runs})
    figure, axes = plt.subplots(1, len(depths), figsize=(3.6 * len(depths), 3.4), squeeze=False, sharey=True)
    for axis, depth in zip(axes[0], depths):
        for d in deep_runs:
            if d.hidden_layers == depth:
                style = "-" if d.method == "bprop" else "--"
                axis.plot(*d.run.curve(), style, label=f"{'Bprop' if d.method == 'bprop' else 'SG'} {d.activation}")
        axis.set(title=f"{depth} hidden layers", xlabel="step", yscale="log")
        axis.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("test error (%)")
    axes[0][0].legend(fontsize=7)
    save_figure(figure, png, title)


def _plot_rdms(deep_runs: list[DeepRun], png: Path, title: str, columns: int = 8) -> None:
    """For the deepest pair of each activation: RDMs of evenly spaced hidden layers, Bprop row above SG row."""
    plt = pyplot()
    pairs = _pairs(deep_runs)
    chosen = [max((p for p in pairs if p[0].activation == a), key=lambda p: p[0].hidden_layers)
              for a in sorted({p[0].activation for p in pairs})]
    rows = [d for pair in chosen for d in pair]
    if not rows:
        rows = deep_runs[:1]
    figure, axes = plt.subplots(len(rows), columns, figsize=(1.6 * columns, 1.8 * len(rows)), squeeze=False)
    # One colour scale for every panel, so layers and methods compare directly.
    vmax = max(rdm.max().item() for d in rows for rdm in d.rdms)
    for row, d in zip(axes, rows):
        count = len(d.rdms)
        layers = sorted({round(i * (count - 1) / (columns - 1)) for i in range(columns)})
        for axis, layer in zip(row, layers):
            axis.imshow(d.rdms[layer].numpy(), cmap="viridis", vmin=0, vmax=vmax)
            marker = " (SG)" if d.method == "sg" and layer + 1 == d.sg_after else ""
            axis.set_title(f"layer {layer + 1}{marker}", fontsize=7)
            axis.set_xticks([])
            axis.set_yticks([])
        for axis in row[len(layers):]:
            axis.axis("off")
        row[0].set_ylabel(f"{d.title}\n{d.hidden_layers} hidden", fontsize=6)
    save_figure(figure, png, "RDMs (1 - correlation), probe sorted by class. " + title)


def _plot_norms(deep_runs: list[DeepRun], png: Path, title: str) -> None:
    plt = pyplot()
    activations = sorted({d.activation for d in deep_runs})
    figure, axes = plt.subplots(1, len(activations), figsize=(5 * len(activations), 3.6), squeeze=False)
    for axis, activation in zip(axes[0], activations):
        for d in deep_runs:
            if d.activation == activation:
                hidden = d.norms[:-1]
                axis.plot(range(1, len(hidden) + 1), hidden, "-" if d.method == "bprop" else "--",
                          label=f"{'Bprop' if d.method == 'bprop' else 'SG'}, {d.hidden_layers} hidden")
        axis.set(title=activation, xlabel="hidden layer", ylabel="weight L2 norm")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=6, ncol=2)
    save_figure(figure, png, title)


def select_runs(runs: list[FinishedRun]) -> list[FinishedRun]:
    """The newest run of each (activation, depth, method), lowest seed only."""
    seeds = [run.config["seed"] for run in runs if run.config["seed"] is not None]
    runs = [run for run in runs if not seeds or run.config["seed"] == min(seeds)]
    return list(newest_per(runs, deep_setting).values())
