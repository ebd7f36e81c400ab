"""The markdown report and the curves of the convergence study, every sentence computed from the runs.

A run's outcome comes from its relative gap g = (L - L*) / L* to the optimal loss L*:
- reached: g <= REACHED_GAP at the last step;
- still falling: not reached, but g fell by at least MIN_FALL (a fraction) over the second
  half of training, so more steps would bring it closer;
- stalled: neither; gradient descent has settled somewhere other than the optimum.
"""
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dni_repro.czarnecki.convergence import models
from dni_repro.czarnecki.convergence.grid import LEARNING_RATES, SG_LEARNING_RATE, ConvergenceRun, cosine

REACHED_GAP = 1e-6
MIN_FALL = 0.1
OUTCOMES = ("reached", "still falling", "stalled")
MODEL_TITLES = {"linear": "linear", "deep_linear": "deep linear"}
LOSS_TITLES = {"mse": "MSE", "log": "log loss"}
METHOD_TITLES = {"backprop": "backprop", "linear_sg": "linear cSG", "sigmoid_sg": "sigmoid SG"}
METHOD_COLOURS = {"backprop": "black", "linear_sg": "tab:orange", "sigmoid_sg": "tab:blue"}
PLOT_FLOOR = 1e-16  # relative gaps at or below rounding are drawn here


@dataclass
class ReportContext:
    command: str
    seed: int
    n: int
    date: str
    commit: str
    device: str
    torch_version: str
    wall_seconds: float


def outcome(run: ConvergenceRun) -> str:
    final = run.relative_gap()
    if final <= REACHED_GAP:
        return "reached"
    if final <= (1 - MIN_FALL) * run.relative_gap(run.steps // 2):
        return "still falling"
    return "stalled"


def gap_text(gap: float) -> str:
    return f"{gap:.1e}" if gap > PLOT_FLOOR else "≤1e-16"


def setting(run: ConvergenceRun, detail: str = "dataset") -> str:
    """detail: 'dataset' names the data only, 'model' adds the model, 'method' also the loss and method."""
    named = []
    if detail in ("model", "method"):
        named.append(MODEL_TITLES[run.model])
    if detail == "method":
        named += [LOSS_TITLES[run.loss], METHOD_TITLES[run.method]]
    return ", ".join([" ".join(named), f"{run.dataset} d={run.dim}"] if named else [f"{run.dataset} d={run.dim}"])


def listed(runs: Iterable[ConvergenceRun], detail: str = "dataset") -> str:
    return "; ".join(f"{setting(run, detail)} (gap {gap_text(run.relative_gap())})" for run in runs)


def by_outcome(runs: list[ConvergenceRun]) -> dict[str, list[ConvergenceRun]]:
    return {name: [run for run in runs if outcome(run) == name] for name in OUTCOMES}


def count_clause(runs: list[ConvergenceRun], detail: str = "dataset") -> str:
    """'reached in 6/8, still falling in 2/8 (...)' with the non-reached settings named."""
    groups, parts = by_outcome(runs), []
    for name in OUTCOMES:
        if groups[name]:
            named = f" ({listed(groups[name], detail)})" if name != "reached" else ""
            parts.append(f"{name} in {len(groups[name])}/{len(runs)}{named}")
    return ", ".join(parts)


def select(rows: list[ConvergenceRun], **fields) -> list[ConvergenceRun]:
    return [run for run in rows if all(getattr(run, key) == value for key, value in fields.items())]


def least_squares_sentence(stalled: list[ConvergenceRun]) -> list[str]:
    """Linear-model runs that stalled with a linear SG: do they end parallel to least squares?"""
    if not stalled:
        return []
    # 1 - cosine: cosines this close to 1 print as 1.000000 and hide the difference that matters
    off_least_squares = max(1 - run.least_squares_cosine for run in stalled)
    optimum_off = [1 - cosine(run.optimum_map[:-1], run.least_squares_map[:-1]) for run in stalled]
    sentence = (
        f"In those stalled logistic-regression runs 1 − cosine between the final weights and the least-squares "
        f"weights on the same 0/1 labels is at most {off_least_squares:.1e}, while between the log-loss optimum's "
        f"weights and the least-squares weights it is {min(optimum_off):.1e} to {max(optimum_off):.1e}"
    )
    if off_least_squares < min(optimum_off):
        sentence += (
            ": the linear SG steers the model towards a least-squares (quadratic implied loss) solution, "
            "not the log-loss one."
        )
    return [sentence + ("" if sentence.endswith(".") else ".")]


def findings(rows: list[ConvergenceRun]) -> list[str]:
    steps = rows[0].steps
    others = [run for run in rows if not (run.loss == "log" and run.method == "linear_sg")]
    logistic_linear_sg = select(rows, model="linear", loss="log", method="linear_sg")
    deep_log_linear_sg = select(rows, model="deep_linear", loss="log", method="linear_sg")
    sigmoid = select(rows, method="sigmoid_sg")
    lines = [
        f"- All runs except log loss with a linear cSG (backprop everywhere, linear cSG with MSE, sigmoid SG): "
        f"{count_clause(others, detail='method')} after {steps} steps.",
        f"- Logistic regression (linear model, log loss) with a linear cSG: {count_clause(logistic_linear_sg)}.",
        *[f"  {sentence}" for sentence in least_squares_sentence(by_outcome(logistic_linear_sg)["stalled"])],
        f"- Deep linear model, log loss, linear cSG: {count_clause(deep_log_linear_sg)}.",
        f"- Sigmoid SG (log loss, both models): {count_clause(sigmoid, detail='model')}.",
    ]
    deviations = []
    stalled_others = by_outcome(others)["stalled"]
    if stalled_others:
        deviations.append(f"runs outside log loss with a linear cSG stalled: {listed(stalled_others, 'method')}")
    not_stalled = [run for run in logistic_linear_sg if outcome(run) != "stalled"]
    if not_stalled:
        deviations.append(f"logistic regression with a linear cSG did not stall on {listed(not_stalled)}")
    if by_outcome(deep_log_linear_sg)["stalled"]:
        deviations.append(
            "the deep linear model with log loss and a linear cSG stalled too on "
            f"{listed(by_outcome(deep_log_linear_sg)['stalled'])}"
        )
    lines.append(
        "- Paper (as summarised): every model reaches the global optimum except logistic regression with a linear "
        "SG, and a sigmoid in the SG fixes it. "
        + ("These runs agree." if not deviations else "These runs agree except: " + "; and ".join(deviations) + ".")
    )
    still_falling = by_outcome(rows)["still falling"]
    if still_falling:
        lines.append(
            f"- {len(still_falling)} run(s) had not reached the optimum within {steps} steps but were still "
            f"approaching it (gap down by at least {MIN_FALL:.0%} over the second half); a longer `--steps` "
            "moves them towards 'reached'."
        )
    return lines


def outcome_table(rows: list[ConvergenceRun]) -> list[str]:
    lines = ["| model | loss | method | reached | still falling | stalled | final relative gap (min – max) |"]
    lines.append("|" + "---|" * 7)
    groups: dict[tuple, list[ConvergenceRun]] = {}
    for run in rows:
        groups.setdefault((run.model, run.loss, run.method), []).append(run)
    for (model, loss, method), runs in groups.items():
        counts = by_outcome(runs)
        gaps = [run.relative_gap() for run in runs]
        lines.append(
            f"| {MODEL_TITLES[model]} | {LOSS_TITLES[loss]} | {METHOD_TITLES[method]} "
            + "".join(f"| {len(counts[name])}/{len(runs)} " for name in OUTCOMES)
            + f"| {gap_text(min(gaps))} – {gap_text(max(gaps))} |"
        )
    return lines


def run_table(rows: list[ConvergenceRun]) -> list[str]:
    lines = [
        "| dataset | d | model | loss | method | final loss | optimal loss | relative gap | map vs optimum "
        "| map vs backprop | cos(w, w_LS) | outcome |",
        "|" + "---|" * 12,
    ]
    for run in rows:
        least_squares = f"{run.least_squares_cosine:.6f}" if run.loss == "log" else "—"
        lines.append(
            f"| {run.dataset} | {run.dim} | {MODEL_TITLES[run.model]} | {LOSS_TITLES[run.loss]} "
            f"| {METHOD_TITLES[run.method]} | {run.final_loss:.6f} | {run.optimum_loss:.6f} "
            f"| {gap_text(run.relative_gap())} | {run.to_optimum:.1e} | {run.to_backprop:.1e} "
            f"| {least_squares} | {outcome(run)} |"
        )
    return lines


def full_width_note(dims: list[int]) -> str:
    full = [dim for dim in dims if models.deep_width(dim) == dim]
    if not full:
        return ""
    return (
        f" At d = {', '.join(map(str, full))} the deep model's middle activation is as wide as the input, so h and a "
        "constant span every affine function of x: the part above the SG can reach the optimum with its true "
        "gradient alone, and the least-squares-best linear cSG hands the part below exactly its true update "
        "(the fit's residual is orthogonal to every affine function of x). The deep model tests the linear "
        "cSG's limits only where it is narrower than the input."
    )


def setup_lines(rows: list[ConvergenceRun], context: ReportContext) -> list[str]:
    dims = sorted({run.dim for run in rows})
    widths = ", ".join(f"{models.deep_width(dim)} at d={dim}" for dim in dims)
    return [
        f"- Data (`dni_repro/data/artificial.py`): {', '.join(sorted({run.dataset for run in rows}))}; "
        f"d = {', '.join(map(str, dims))}; n = {context.n} examples each, generated from seed {context.seed}. "
        "Log loss uses the label target > 0 (the regression target binarised at zero). Training loss only: "
        "the study is about optimisation.",
        f"- Models: linear (x W + b, zero init) and deep linear ({models.HIDDEN_LAYERS} hidden linear layers of "
        f"width min(d, {models.MAX_WIDTH}) = {widths}, with biases, and a linear output; orthonormal first layer and "
        f"orthogonal hidden layers drawn from seed {context.seed}, zero output row, so both models start at the "
        "zero map). "
        f"The SG sits at the output of the linear model and after hidden layer {models.SG_AFTER_HIDDEN_LAYER} of the "
        f"deep one.{full_width_note(dims)}",
        "- Losses: MSE 0.5·mean((f(x) − y)²); log loss mean binary cross-entropy on logits.",
        "- Methods: backprop; linear cSG SG(h, y) = hA + yB + c (MSE and log loss); sigmoid SG "
        "(sigmoid(ha + c) − y) b (log loss only); SG parameters start at zero and are regressed (L2) onto the "
        "true per-example gradient computed by the part above, every step.",
        f"- Optimiser: full-batch gradient descent, {rows[0].steps} steps, learning rate "
        + ", ".join(f"{LEARNING_RATES[m]:g} ({MODEL_TITLES[m]})" for m in LEARNING_RATES)
        + f", SG learning rate {SG_LEARNING_RATE:g}; float64.",
        "- Optimum: least squares (MSE) or Newton's method (log loss) on the bias-augmented linear model; every "
        "model here can express every linear map, so this is the global optimum of every run. 'map vs optimum' "
        "and 'map vs backprop' are relative L2 distances of the end-to-end map (weights and bias); cos(w, w_LS) "
        "is the cosine between a log-loss run's weights and the least-squares weights on the same labels.",
        f"- Outcome: reached if the relative gap (L − L*)/L* ≤ {REACHED_GAP:g} at the last step; still falling if "
        f"not, but the gap fell by at least {MIN_FALL:.0%} over the second half; stalled otherwise.",
    ]


def markdown(rows: list[ConvergenceRun], context: ReportContext, png_name: str) -> str:
    lines = [
        "# Czarnecki et al. 2017, experiment A: convergence with synthetic gradients on artificial data",
        "",
        f"Generated by `{context.command}`; date (UTC): {context.date}; commit: {context.commit}; "
        f"device: {context.device}; torch {context.torch_version}; seed: {context.seed}; "
        f"steps: {rows[0].steps}; {len(rows)} runs in {context.wall_seconds:.0f} s. Curves: `{png_name}`.",
        "",
        "## Setup",
        "",
        *setup_lines(rows, context),
        "",
        "## What the runs show",
        "",
        *findings(rows),
        "",
        *outcome_table(rows),
        "",
        "## Every run",
        "",
        *run_table(rows),
    ]
    return "\n".join(lines) + "\n"


def plot(rows: list[ConvergenceRun], png: Path, title: str) -> None:
    """Relative gap against step: one row of panels per (dataset, d), one column per (model, loss)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    row_keys = list(dict.fromkeys((run.dataset, run.dim) for run in rows))
    column_keys = list(dict.fromkeys((run.model, run.loss) for run in rows))
    figure, axes = plt.subplots(
        len(row_keys), len(column_keys), figsize=(3.6 * len(column_keys), 2.4 * len(row_keys)),
        squeeze=False, sharex=True, sharey=True,
    )
    for run in rows:
        axis = axes[row_keys.index((run.dataset, run.dim))][column_keys.index((run.model, run.loss))]
        stride = max(1, len(run.losses) // 500)
        steps = list(range(0, len(run.losses), stride))
        gaps = [max(run.relative_gap(step), PLOT_FLOOR) for step in steps]
        axis.plot(steps, gaps, color=METHOD_COLOURS[run.method], label=METHOD_TITLES[run.method], linewidth=1.2)
    for row, (dataset, dim) in enumerate(row_keys):
        axes[row][0].set_ylabel(f"{dataset}\nd={dim}", fontsize=8)
    for column, (model, loss) in enumerate(column_keys):
        axes[0][column].set_title(f"{MODEL_TITLES[model]}, {LOSS_TITLES[loss]}", fontsize=10)
        axes[-1][column].set_xlabel("step")
    for axis in axes.flat:
        axis.set_yscale("log")
        axis.axhline(REACHED_GAP, color="grey", linestyle=":", linewidth=0.8)
        axis.grid(True, which="major", alpha=0.3)
        axis.tick_params(labelsize=7)
    handles = {}
    for axis in axes.flat:
        for handle, name in zip(*axis.get_legend_handles_labels()):
            handles.setdefault(name, handle)
    figure.legend(list(handles.values()), list(handles), loc="lower center", ncol=len(handles), fontsize=9)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout(rect=(0, 0.02, 1, 0.98))
    png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=90)
    plt.close(figure)
