"""Reports for the feed-forward studies beyond Table 1 (section 3.1, appendix A.2).

Each `<figure>_report(runs)` takes completed runs (see `figures.load_runs`), keeps
the newest run of every setting, and returns the markdown and a PNG writer. The
paper's numbers, where it prints any, sit in their own columns.
"""
from pathlib import Path

from dni_repro.reports import paper_results as paper
from dni_repro.reports.figures import (
    Figure,
    FinishedRun,
    caption,
    error_at,
    format_errors,
    mean_error,
    newest_per,
    plain_log_ticks,
    provenance_table,
    pyplot,
    save_figure,
    seeds_per,
)


# Runs made before these options existed (Table 1's) lack the keys; these are their values.
STUDY_DEFAULTS = {"positions": None, "p_update": 1.0, "synthetic_inputs": False, "stale_decay": None}


def interface_of(run: FinishedRun) -> dict:
    return {**STUDY_DEFAULTS, **run.config["interface"]}


def error(run) -> str:
    return f"{run.summary['test_error']:.1f}" if run is not None else "—"


# Fig. 5: sparse updates and complete unlock


def fig5_report(runs: list[FinishedRun]) -> tuple[str, Figure]:
    cells = newest_per(
        runs,
        lambda r: (
            "unlock" if interface_of(r)["synthetic_inputs"] else "sparse",
            interface_of(r)["name"],
            interface_of(r)["p_update"],
        )
        if interface_of(r)["name"] in ("dni", "cdni")
        else None,
    )
    columns = [(mode, name) for mode in ("sparse", "unlock") for name in ("dni", "cdni")]
    probabilities = sorted({key[2] for key in cells})
    used = list(cells.values())
    lines = [
        "# Fig. 5: sparse updates (left) and complete unlock (right), 4-layer MNIST FCN",
        "",
        f"Final test error (%). {caption(used)}." if used else "No runs yet: `make fig5`.",
        "",
        "A layer updates in a fraction p_update of the steps, so short runs at small p_update are also",
        "short in updates per layer (last column); the paper ran 500k steps.",
        "",
        "| p_update | DNI sparse | cDNI sparse | DNI complete unlock | cDNI complete unlock | updates per layer |",
        "|---|---|---|---|---|---|",
    ]
    for p in probabilities:
        steps = sorted({run.summary["steps"] for key, run in cells.items() if key[2] == p})
        updates = "/".join(f"{p * s:,.0f}" for s in steps)
        lines.append(
            f"| {p:g} | " + " | ".join(error(cells.get((mode, name, p))) for mode, name in columns) + f" | {updates} |"
        )
    lines += ["", "Paper (Fig. 5 and section 3.1, stated as findings, no table):", ""]
    lines += [f"- {finding}" for finding in paper.FIG5_FINDINGS.values()]
    lines += [""] + provenance_table([(f"{mode} {name} p_update={p:g}", run) for (mode, name, p), run in cells.items()])

    def plot(png: Path) -> None:
        plt = pyplot()
        figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        # As in the paper's panel: error against p_update after several numbers of steps.
        for name, style in (("dni", "o-"), ("cdni", "s--")):
            sparse = sorted((p, run) for (mode, n, p), run in cells.items() if mode == "sparse" and n == name)
            if not sparse:
                continue
            max_steps = max(run.summary["steps"] for _, run in sparse)
            for fraction, alpha in ((1 / 3, 0.35), (2 / 3, 0.65), (1.0, 1.0)):
                points = [(p, error_at(run, round(fraction * max_steps))) for p, run in sparse]
                points = [(p, e) for p, e in points if e is not None]
                label = f"{paper.INTERFACE_TITLES[name]}, step {round(fraction * max_steps):,}"
                left.plot(*zip(*points), style, alpha=alpha, label=label, color="C0" if name == "dni" else "C1")
        left.set(title="sparse updates: test error vs p_update", xlabel="p_update", ylabel="test error (%)")
        for (mode, name, p), run in cells.items():
            if mode == "unlock":
                right.plot(*run.curve(), "-" if name == "dni" else "--", label=f"{paper.INTERFACE_TITLES[name]} p={p:g}")
        right.set(title="complete unlock: test error vs step", xlabel="step")
        for axis in (left, right):
            plain_log_ticks(axis)
            axis.grid(True, which="both", alpha=0.3)
            if axis.get_legend_handles_labels()[0]:
                axis.legend(fontsize=8)
        save_figure(figure, png, caption(used))

    return "\n".join(lines) + "\n", plot


# Fig. 9 and 10: DNI at chosen positions of a 6-layer FCN, and SG quality


def _fig9_setting(run: FinishedRun):
    interface, depth = interface_of(run), run.config["model"]["depth"]
    if depth != 6:
        return None
    positions = interface["positions"]
    if interface["name"] == "bprop":
        return ("bprop", ())
    if positions is None:
        positions = list(range(1, depth))
    return (interface["name"], tuple(positions))


def fig9_report(runs: list[FinishedRun]) -> tuple[str, Figure, Figure]:
    cells = seeds_per(runs, _fig9_setting)
    bprop = cells.get(("bprop", ()))
    single = {k: cells.get(("dni", (k,))) for k in range(1, 6)}
    cut = {k: cells.get(("no_bprop", (k,))) for k in range(1, 6)}
    up_to = {k: cells.get(("dni", tuple(range(1, k + 1)))) for k in range(1, 6)}
    used = [run for group in cells.values() for run in group]

    def errors(group) -> str:
        return format_errors(group) if group else "—"

    lines = [
        "# Fig. 9: a 6-layer MNIST FCN with DNI at chosen boundaries",
        "",
        f"Final test error (%), mean ± sd over seeds where several ran. {caption(used)}." if used else "No runs yet: `make fig9`.",
        f"Bprop everywhere: {errors(bprop)} reproduced, {paper.FIG9_BPROP} paper.",
        "",
        "## (a) One boundary decoupled, after layer k",
        "",
        "| k | single DNI | single DNI paper | cut, no DNI | cut paper |",
        "|---|---|---|---|---|",
    ]
    for k in range(1, 6):
        lines.append(
            f"| {k} | {errors(single[k])} | {paper.FIG9_SINGLE_DNI.get(k, '—')} | {errors(cut[k])} "
            f"| {paper.FIG9_CUT.get(k, '—')} |"
        )
    lines += ["", "## (b) DNI on every boundary up to k, Bprop above", "", "| k | DNI up to k |", "|---|---|"]
    lines += [f"| {k} | {errors(up_to[k])} |" for k in range(1, 6)]
    lines += [
        "",
        "The paper gives only the end points of (a) in the text (A.2) and no numbers for (b).",
        "",
        "## Fig. 10: single-DNI synthetic gradient against the true gradient",
        "",
        "Lowest seed's run; mean over its last five measurements (the curves are in `fig10.png`).",
        "",
        "| k | L2 distance | cosine similarity | sign error |",
        "|---|---|---|---|",
    ]
    quality_key = "sg_quality/boundary{k}/true_{metric}"
    first_single = {k: group[0] for k, group in single.items() if group}
    for k, run in first_single.items():
        values = []
        for metric in ("l2", "cosine", "sign_error"):
            _, series = run.curve(quality_key.format(k=k, metric=metric))
            tail = series[-5:]
            values.append(f"{sum(tail) / len(tail):.3g}" if tail else "—")
        lines.append(f"| {k} | " + " | ".join(values) + " |")
    lines += [""] + provenance_table(
        [
            (f"{name} positions={list(positions) or 'none'} seed={run.config['seed']}", run)
            for (name, positions), group in cells.items()
            for run in group
        ]
    )

    def plot_fig9(png: Path) -> None:
        plt = pyplot()
        figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
        panels = (
            (axes[0], "(a) one boundary decoupled after layer k", {"single DNI": single, "cut, no DNI": cut}),
            (axes[1], "(b) DNI on every boundary up to k", {"DNI up to k": up_to}),
        )
        for axis, title, series in panels:
            for label, runs_by_k in series.items():
                points = [(k, mean_error(group)) for k, group in runs_by_k.items() if group]
                if points:
                    axis.plot(*zip(*points), "o-", label=label)
            if bprop is not None:
                axis.axhline(mean_error(bprop), color="grey", linestyle=":", label="Bprop")
            axis.set(title=title, xlabel="k", xticks=range(1, 6))
            plain_log_ticks(axis)
            axis.grid(True, which="both", alpha=0.3)
            if axis.get_legend_handles_labels()[0]:
                axis.legend(fontsize=8)
        axes[0].set_ylabel("final test error (%)")
        save_figure(figure, png, caption(used))

    def plot_fig10(png: Path) -> None:
        plt = pyplot()
        figure, axes = plt.subplots(1, 3, figsize=(13, 3.8))
        for axis, metric, title in zip(axes, ("l2", "cosine", "sign_error"), ("L2 distance", "cosine similarity", "sign error")):
            for k, run in first_single.items():
                axis.plot(*run.curve(quality_key.format(k=k, metric=metric)), label=f"DNI after layer {k}")
            axis.set(title=f"{title} to the true gradient", xlabel="step")
            axis.grid(True, alpha=0.3)
        if axes[0].get_legend_handles_labels()[0]:
            axes[0].legend(fontsize=8)
        save_figure(figure, png, caption(list(first_single.values())))

    return "\n".join(lines) + "\n", plot_fig9, plot_fig10


# Fig. 12: linear vs deeper SG models


def fig12_report(runs: list[FinishedRun]) -> tuple[str, Figure]:
    # One seed per cell: Table 1's folders hold several, so keep the lowest seed present.
    seeds = [run.config["seed"] for run in runs if run.config["seed"] is not None]
    runs = [run for run in runs if not seeds or run.config["seed"] == min(seeds)]
    cells = newest_per(
        runs,
        lambda r: (interface_of(r)["name"], interface_of(r)["sg"]["hidden_layers"], r.config["model"]["depth"])
        if interface_of(r)["name"] in ("dni", "cdni")
        and r.config["model"]["name"] == "fcn"
        and interface_of(r)["positions"] is None
        and interface_of(r)["p_update"] == 1
        and not interface_of(r)["synthetic_inputs"]
        else None,
    )
    columns = [(name, layers) for name in ("dni", "cdni") for layers in sorted({k[1] for k in cells if k[0] == name})]
    used = list(cells.values())
    titles = {(name, layers): f"{paper.INTERFACE_TITLES[name]}, {'linear' if layers == 0 else f'{layers} hidden'} SG"
              for name, layers in columns}
    lines = [
        "# Fig. 12: linear synthetic-gradient models beside deeper ones, MNIST FCNs",
        "",
        f"Final test error (%). {caption(used)}." if used else "No runs yet: `make fig12`.",
        "",
        "| layers | " + " | ".join(titles[c] for c in columns) + " | DNI paper (Table 1, 2 hidden) | cDNI paper (Table 1, linear) |",
        "|---|" + "---|" * (len(columns) + 2),
    ]
    for depth in range(3, 7):
        paper_row = paper.TABLE1[("MNIST", "fcn", depth)]
        lines.append(
            f"| {depth} | " + " | ".join(error(cells.get((*c, depth))) for c in columns)
            + f" | {paper_row['dni']} | {paper_row['cdni']} |"
        )
    lines += ["", "Fig. 12 itself prints no numbers; the paper columns are Table 1's architectures (A.1)."]
    lines += [""] + provenance_table([(f"{titles[(n, l)]}, {d} layers", run) for (n, l, d), run in cells.items()])

    def plot(png: Path) -> None:
        plt = pyplot()
        figure, axis = plt.subplots(figsize=(6, 4))
        for column in columns:
            points = [(d, cells[(*column, d)].summary["test_error"]) for d in range(3, 7) if (*column, d) in cells]
            axis.plot(*zip(*points), "o-" if column[1] == 0 else "s--", label=titles[column])
        axis.set(xlabel="layers", ylabel="final test error (%)", xticks=range(3, 7))
        plain_log_ticks(axis)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
        save_figure(figure, png, caption(used))

    return "\n".join(lines) + "\n", plot


# Section 3.1's stale-gradient baseline


def stale_report(runs: list[FinishedRun]) -> tuple[str, Figure]:
    cells = newest_per(
        runs,
        lambda r: (r.config["model"]["depth"], interface_of(r)["stale_decay"]) if interface_of(r)["name"] == "stale" else None,
    )
    depths = sorted({depth for depth, _ in cells})
    decays = sorted({decay for _, decay in cells})
    used = list(cells.values())
    lines = [
        "# Section 3.1: moving average of stale gradients instead of synthetic gradients, MNIST FCNs",
        "",
        f"Final test error (%). {caption(used)}." if used else "No runs yet: `make stale-baseline`.",
        "",
        "| layers | " + " | ".join(f"decay {d:g}" for d in decays) + " | best reproduced | best paper |",
        "|---|" + "---|" * (len(decays) + 2),
    ]
    for depth in depths:
        row = [cells.get((depth, decay)) for decay in decays]
        best = min((run.summary["test_error"] for run in row if run is not None), default=None)
        lines.append(
            f"| {depth} | " + " | ".join(error(run) for run in row)
            + f" | {'—' if best is None else f'{best:.1f}'} | {paper.STALE_BEST.get(depth, '—')} |"
        )
    lines += ["", "Paper: \"marginally better than using zero gradients (no backpropagation)\"; Table 1 has No Bprop beside it."]
    lines += [""] + provenance_table([(f"{depth} layers, decay {decay:g}", run) for (depth, decay), run in cells.items()])

    def plot(png: Path) -> None:
        plt = pyplot()
        figure, axis = plt.subplots(figsize=(6, 4))
        for depth in depths:
            points = [(i, cells[(depth, d)].summary["test_error"]) for i, d in enumerate(decays) if (depth, d) in cells]
            axis.plot(*zip(*points), "o-", label=f"{depth} layers")
        axis.set(xlabel="decay", ylabel="final test error (%)", xticks=range(len(decays)))
        axis.set_xticklabels([f"{d:g}" for d in decays])
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8)
        save_figure(figure, png, caption(used))

    return "\n".join(lines) + "\n", plot


# Section 3.1: a 21-layer cDNI FCN


def deep_report(runs: list[FinishedRun]) -> tuple[str, Figure]:
    cells = newest_per(
        runs,
        lambda r: (interface_of(r)["name"], r.config["model"]["depth"], r.summary["steps"], r.config["optimizer"]["lr"])
        if r.config["model"]["depth"] >= 10
        else None,
    )
    used = list(cells.values())
    lines = [
        "# Section 3.1: deep MNIST FCNs trained with cDNI",
        "",
        f"Final test error (%). {caption(used)}." if used else "No runs yet: `make deep-cdni`.",
        "",
        "| layers | interface | steps | Adam lr | reproduced | paper (500k steps, lr 3e-5) |",
        "|---|---|---|---|---|---|",
    ]
    for (name, depth, steps, lr), run in cells.items():
        reference = paper.DEEP_CDNI.get(name, "—") if depth == paper.DEEP_CDNI["depth"] else "—"
        lines.append(
            f"| {depth} | {paper.INTERFACE_TITLES.get(name, name)} | {steps:,} | {lr:g} | {error(run)} | {reference} |"
        )
    lines += [""] + provenance_table(
        [(f"{name}, {depth} layers, {steps} steps, lr {lr:g}", run) for (name, depth, steps, lr), run in cells.items()]
    )

    def plot(png: Path) -> None:
        plt = pyplot()
        figure, axis = plt.subplots(figsize=(6, 4))
        for (name, depth, steps, lr), run in cells.items():
            label = f"{paper.INTERFACE_TITLES.get(name, name)}, {depth} layers, {steps:,} steps, lr {lr:g}"
            axis.plot(*run.curve(), label=label)
        axis.set(xlabel="step", ylabel="test error (%)")
        plain_log_ticks(axis)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
        save_figure(figure, png, caption(used))

    return "\n".join(lines) + "\n", plot


# Czarnecki et al. 2017, section 5: the error-approximation methods side by side

UNIFIED_VIEW_ORDER = ("bprop", "fa", "dfa", "kickback", "dni", "cdni", "no_bprop")
UNIFIED_VIEW_MESSAGES = {
    "bprop": "the true dL/dh_i",
    "fa": "the receiver's error through a fixed random matrix instead of its weights",
    "dfa": "the output error through a fixed random matrix, straight to layer i",
    "kickback": "the true class's scalar error, broadcast and backpropagated through one layer",
    "dni": "a learned SG(h_i) (2 hidden layers), regressed to bootstrapped targets",
    "cdni": "a learned linear SG(h_i, y), regressed to bootstrapped targets",
    "no_bprop": "nothing: only the classifier learns",
}


def interfaces_report(runs: list[FinishedRun]) -> tuple[str, Figure]:
    cells = seeds_per(
        runs,
        lambda r: (interface_of(r)["name"], r.config["model"]["depth"])
        if r.config["model"]["name"] == "fcn" and interface_of(r)["positions"] is None
        else None,
    )
    methods = [name for name in UNIFIED_VIEW_ORDER if any(key[0] == name for key in cells)]
    depths = sorted({key[1] for key in cells})
    used = [run for seed_runs in cells.values() for run in seed_runs]
    lines = [
        "# Error-approximation methods as interfaces (Czarnecki et al. 2017, section 5), MNIST FCNs",
        "",
        f"Final test error (%), mean ± standard deviation over seeds. {caption(used)}."
        if used else "No runs yet: `make czarnecki-interfaces`.",
        "",
        "Neither paper prints numbers for FA, DFA or Kickback; the Bprop column of Jaderberg et al.'s",
        "Table 1 (500k steps) stands beside ours for scale.",
        "",
        "| layers | " + " | ".join(paper.INTERFACE_TITLES[name] for name in methods) + " | Bprop paper (2016 Table 1) |",
        "|---|" + "---|" * (len(methods) + 1),
    ]
    for depth in depths:
        reference = paper.TABLE1.get(("MNIST", "fcn", depth), {}).get("bprop", "—")
        row = [format_errors(cells[(name, depth)]) if (name, depth) in cells else "—" for name in methods]
        lines.append(f"| {depth} | " + " | ".join(row) + f" | {reference} |")
    lines += ["", "| method | what replaces the backward message dL/dh_i |", "|---|---|"]
    lines += [f"| {paper.INTERFACE_TITLES[name]} | {UNIFIED_VIEW_MESSAGES[name]} |" for name in methods]
    lines += [""] + provenance_table(
        [(f"{paper.INTERFACE_TITLES[name]}, {depth} layers, seed {run.config['seed']}", run)
         for (name, depth), seed_runs in cells.items() for run in seed_runs]
    )

    def plot(png: Path) -> None:
        plt = pyplot()
        figure, axis = plt.subplots(figsize=(7.5, 4.2))
        for name in methods:
            points = [(d, mean_error(cells[(name, d)])) for d in depths if (name, d) in cells]
            axis.plot(*zip(*points), "o-", label=paper.INTERFACE_TITLES[name])
        axis.set(xlabel="layers", ylabel="final test error (%), mean over seeds", xticks=depths)
        plain_log_ticks(axis)
        axis.grid(True, which="both", alpha=0.3)
        # Outside the axes: Kickback's curve runs along the top, where a legend would cover it.
        axis.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
        save_figure(figure, png, caption(used))

    return "\n".join(lines) + "\n", plot
