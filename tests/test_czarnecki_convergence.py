"""Czarnecki et al. 2017 experiment A: artificial data, exact synthetic gradients, the optimum, the grid, the report."""
import math

import pytest
import torch

from dni_repro.czarnecki.convergence.grid import ConvergenceRun, run_grid
from dni_repro.czarnecki.convergence.models import affine_map, build_model
from dni_repro.czarnecki.convergence.optimum import global_optimum, with_bias_column
from dni_repro.czarnecki.convergence.report import findings, outcome
from dni_repro.czarnecki.convergence.synthetic_gradients import LinearConditionedSG, SigmoidSG
from dni_repro.czarnecki.convergence.training import LOSSES, loss_target, step_gradients
from dni_repro.data.artificial import ARTIFICIAL_DATASETS, make_artificial
from tests.conftest import run_script

# (model, input dim): the deep model at d=2 is as wide as its input, at d=24 narrower (width cap 16).
SHAPES = [("linear", 2), ("linear", 100), ("deep_linear", 2), ("deep_linear", 24)]


def problem(kind: str, dim: int, loss: str, n: int = 64):
    """Data and a model moved off its initial point (whose zero output row would hide errors below it),
    far enough that h spreads over the curved part of the sigmoid."""
    inputs, target = make_artificial("two_blobs", dim, seed=0, n=n)
    model = build_model(kind, dim, seed=0)
    scale = 1.0 if kind == "linear" else 0.1  # small for the deep model: its eleven layers multiply
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator, dtype=torch.float64))
    return model, inputs.double(), loss_target(loss, target)


def backprop_gradients(model, inputs, target, loss) -> tuple[torch.Tensor, ...]:
    return torch.autograd.grad(LOSSES[loss](model(inputs), target), model.parameters())


def upper_part(model) -> tuple[torch.Tensor, torch.Tensor]:
    """The part above the SG as h V + beta: V (D, 1), beta (1,). The identity for the linear model."""
    return affine_map(model.upper, model.width)


def assert_same_gradients(ours, reference) -> None:
    assert len(ours) == len(reference)
    for mine, true in zip(ours, reference):
        torch.testing.assert_close(mine, true, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("kind, dim", SHAPES)
def test_exact_linear_sg_gives_the_backprop_update_under_mse(kind, dim):
    model, inputs, target = problem(kind, dim, "mse")
    weights, bias = upper_part(model)
    sg = LinearConditionedSG(model.width)
    # Per-example MSE gradient at h: (h V + beta - y) V^T. (The SG predicts per-example gradients and the
    # lower part divides by n, so for the linear model this is A = 1, B = -1, c = 0, not A = 1/n.)
    with torch.no_grad():
        sg.A.copy_(weights @ weights.T)
        sg.B.copy_(-weights.T)
        sg.c.copy_(bias * weights[:, 0])
    step = step_gradients(model, sg, inputs, target, "mse")
    assert_same_gradients(step.model, backprop_gradients(model, inputs, target, "mse"))
    assert max(gradient.abs().max() for gradient in step.sg) < 1e-12  # nothing left for the SG to learn


@pytest.mark.parametrize("kind, dim", SHAPES)
def test_exact_sigmoid_sg_gives_the_backprop_update_under_log_loss(kind, dim):
    model, inputs, target = problem(kind, dim, "log")
    weights, bias = upper_part(model)
    sg = SigmoidSG(model.width)
    with torch.no_grad():  # per-example log-loss gradient at h: (sigmoid(h V + beta) - y) V^T
        sg.a.copy_(weights)
        sg.c.copy_(bias[0])
        sg.b.copy_(weights.T)
    step = step_gradients(model, sg, inputs, target, "log")
    assert_same_gradients(step.model, backprop_gradients(model, inputs, target, "log"))
    assert max(gradient.abs().max() for gradient in step.sg) < 1e-12


@pytest.mark.parametrize("kind, dim", [("linear", 2), ("deep_linear", 24)])
def test_an_inexact_sg_changes_only_the_lower_update_and_learns_nothing_into_the_model(kind, dim):
    model, inputs, target = problem(kind, dim, "log")
    sg = LinearConditionedSG(model.width)
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for parameter in sg.parameters():
            parameter.normal_(generator=generator)
    step = step_gradients(model, sg, inputs, target, "log")
    lower_count = len(list(model.lower.parameters()))
    backprop = backprop_gradients(model, inputs, target, "log")
    assert_same_gradients(step.model[lower_count:], backprop[lower_count:])  # the upper part: true gradient
    h = model.lower(inputs)
    expected_lower = torch.autograd.grad(h, list(model.lower.parameters()), sg(h.detach(), target) / len(target))
    assert_same_gradients(step.model[:lower_count], expected_lower)
    assert not torch.allclose(step.model[0], backprop[0])


def best_linear_sg_fit(h: torch.Tensor, target: torch.Tensor, gradient: torch.Tensor):
    """Least-squares fit of h A + y B + c to per-example gradients: (relative residual, fitted SG)."""
    design = torch.cat([h, target[:, None], torch.ones(len(h), 1, dtype=h.dtype)], dim=1)
    solution = torch.linalg.lstsq(design, gradient).solution
    residual = ((design @ solution - gradient).norm() / gradient.norm()).item()
    sg = LinearConditionedSG(h.shape[1])
    with torch.no_grad():
        sg.A.copy_(solution[:-2])
        sg.B.copy_(solution[-2:-1])
        sg.c.copy_(solution[-1])
    return residual, sg


@pytest.mark.parametrize("kind, dim, spans_inputs", [("linear", 2, False), ("deep_linear", 2, True),
                                                    ("deep_linear", 24, False)])
def test_no_linear_sg_represents_the_log_loss_gradient(kind, dim, spans_inputs):
    """The best linear cSG leaves a residual under log loss. That residual still reaches the lower part's
    update, unless h and 1 span every affine function of x (deep model with width = d): the least-squares
    residual is orthogonal to them, so the lower part then gets exactly its true update anyway."""
    residuals = {}
    for loss in ("mse", "log"):
        model, inputs, target = problem(kind, dim, loss, n=256)
        h = model.lower(inputs).detach().requires_grad_()
        true_gradient = len(target) * torch.autograd.grad(LOSSES[loss](model.upper(h).squeeze(1), target), h)[0]
        residuals[loss], best = best_linear_sg_fit(h.detach(), target, true_gradient)
        step = step_gradients(model, best, inputs, target, loss)
        same = all(torch.allclose(a, b, rtol=1e-8, atol=1e-12)
                   for a, b in zip(step.model, backprop_gradients(model, inputs, target, loss)))
        assert same == (loss == "mse" or spans_inputs)
    assert residuals["mse"] < 1e-10
    assert residuals["log"] > 1e-3


@pytest.mark.parametrize("dim", [2, 100])
@pytest.mark.parametrize("name", ARTIFICIAL_DATASETS)
def test_generators_are_deterministic_and_have_the_documented_shapes(name, dim):
    global_state = torch.get_rng_state()
    inputs, target = make_artificial(name, dim, seed=3, n=200)
    assert torch.equal(torch.get_rng_state(), global_state)  # only a local generator was used
    assert inputs.shape == (200, dim) and target.shape == (200,)
    assert inputs.dtype == torch.float32 and target.dtype == torch.float32
    again_inputs, again_target = make_artificial(name, dim, seed=3, n=200)
    assert torch.equal(inputs, again_inputs) and torch.equal(target, again_target)
    assert not torch.equal(inputs, make_artificial(name, dim, seed=4, n=200)[0])
    assert torch.isfinite(inputs).all() and 0.3 < inputs.std(dim=0).mean() < 3  # order-one coordinates
    if name == "noisy_linear_regression":
        assert len(set(target.tolist())) == 200
        assert set((target > 0).float().unique().tolist()) == {0.0, 1.0}
    else:
        assert set(target.unique().tolist()) == {0.0, 1.0} and target.sum() == 100


def test_generators_make_their_documented_structure():
    inputs, labels = make_artificial("concentric_shells", 100, seed=0, n=400)
    radii = inputs.norm(dim=1) / math.sqrt(100)
    assert radii[labels == 1].min() > 1.5 > radii[labels == 0].max()
    inputs, labels = make_artificial("xor_blobs", 100, seed=0, n=400)
    product = inputs[:, 0] * inputs[:, 1]
    assert product[labels == 1].mean() < -1 and product[labels == 0].mean() > 1
    inputs, labels = make_artificial("two_blobs", 2, seed=0, n=400)
    assert 1.5 < (inputs[labels == 1].mean(0) - inputs[labels == 0].mean(0)).norm() < 2.5
    with pytest.raises(ValueError, match="unknown artificial dataset"):
        make_artificial("moons", 2, seed=0)


def test_log_loss_optimum_is_stationary_and_separable_labels_are_refused():
    inputs, target = make_artificial("two_blobs", 100, seed=0)
    labels = loss_target("log", target)
    theta, value = global_optimum(inputs.double(), labels, "log")
    design = with_bias_column(inputs.double())
    assert (design.T @ (torch.sigmoid(design @ theta) - labels)).norm() / len(labels) < 1e-10
    assert value == pytest.approx(LOSSES["log"](design @ theta, labels).item())
    separable = torch.tensor([[-2.0, 0.0], [-1.0, 1.0], [1.0, 0.0], [2.0, 1.0]], dtype=torch.float64)
    with pytest.raises(RuntimeError, match="separable"):
        global_optimum(separable, torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=torch.float64), "log")


def test_short_grid_with_mse_and_a_linear_sg_ends_at_the_optimum():
    # 1,500 steps: the slowest of the four, the linear model with a linear SG, is then 1e-4 from the optimum.
    steps = 1500
    rows = run_grid(steps=steps, datasets=["two_blobs"], dims=[2], models=["linear", "deep_linear"], losses=["mse"],
                    n=200)
    assert [(run.model, run.method) for run in rows] == [
        ("linear", "backprop"), ("linear", "linear_sg"), ("deep_linear", "backprop"), ("deep_linear", "linear_sg")
    ]
    for run in rows:
        assert len(run.losses) == steps + 1
        assert outcome(run) == "reached" and run.to_optimum < 1e-3
        assert run.relative_gap(0) > 0.1  # they started far from it


def fake_run(model: str, loss: str, method: str, losses: list[float], optimum=(1.0, 0.0, 0.0)) -> ConvergenceRun:
    weights = torch.tensor([1.0, 0.0, 0.0])  # the run's, backprop's and least squares' map
    return ConvergenceRun(
        "two_blobs", 2, model, loss, method, losses, 0.5, weights, torch.tensor(optimum), weights, weights, 0.0
    )


def test_outcomes_and_findings_follow_the_numbers():
    reached, falling, stalled = [1.0, 0.6, 0.5], [1.0, 0.6, 0.52], [1.0, 0.6, 0.599]
    assert [outcome(fake_run("linear", "mse", "backprop", losses)) for losses in (reached, falling, stalled)] == [
        "reached", "still falling", "stalled"
    ]
    paper_like = [
        fake_run("linear", "mse", "backprop", reached),
        fake_run("linear", "log", "linear_sg", stalled),
        fake_run("deep_linear", "log", "linear_sg", reached),
        fake_run("linear", "log", "sigmoid_sg", falling),
    ]
    text = "\n".join(findings(paper_like))
    assert "with a linear cSG: stalled in 1/1" in text and "These runs agree." in text
    assert "1 run(s) had not reached the optimum within 2 steps" in text
    contrary = [
        paper_like[0], fake_run("linear", "log", "linear_sg", reached), fake_run("linear", "mse", "linear_sg", stalled)
    ]
    text = "\n".join(findings(contrary))
    assert "These runs agree except" in text and "did not stall on two_blobs d=2" in text
    assert "outside log loss with a linear cSG stalled: linear MSE linear cSG, two_blobs d=2 (gap 2.0e-01)" in text


def test_script_writes_a_labelled_report_and_a_png(tmp_path):
    out, png = tmp_path / "report.md", tmp_path / "curves.png"
    # In-process, as a subprocess would run it (argv, cwd, exit status): a fresh interpreter spends seconds on torch.
    result = run_script("make_czarnecki_convergence.py",
                        ["--quick", "--steps", "20", "--n", "100", "--out", str(out), "--png", str(png)])
    assert result.returncode == 0, result.stderr
    report = out.read_text()
    for label in ("Generated by `python scripts/make_czarnecki_convergence.py --quick --steps 20", "date (UTC):",
                  "commit:", "device: cpu (1 thread)", "## What the runs show", "| xor_blobs | 2 | deep linear |"):
        assert label in report
    # the outcome table (header and one row per model, loss and method), then the run table (header, 40 runs)
    assert sum(line.startswith("| ") for line in report.splitlines()) == (1 + 10) + (1 + 40)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_stalled_logistic_runs_are_compared_with_least_squares():
    stalled = [1.0, 0.6, 0.599]
    parallel = fake_run("linear", "log", "linear_sg", stalled, optimum=(0.8, 0.6, 0.0))
    text = "\n".join(findings([parallel]))
    assert "is at most 0.0e+00" in text and "it is 2.0e-01 to 2.0e-01" in text
    assert "steers the model towards a least-squares" in text
    text = "\n".join(findings([fake_run("linear", "log", "linear_sg", stalled)]))
    assert "steers" not in text  # the optimum is itself parallel to least squares: nothing to tell apart
