"""Czarnecki et al. 2017 experiment B: the implied loss, the loss-change comparison, and the measured run."""
import copy
import dataclasses
import math

import pytest
import torch
from torch import nn
import torch.nn.functional as F

from dni_repro.czarnecki.loss_approximation import (
    ScaledLinearSG,
    Setup,
    asymmetry,
    build_network,
    checkpoint_steps,
    loss_change_agreement,
    measure,
    perturbations,
    probe_set,
    train,
)
from dni_repro.data.mnist_family import load_mnist_5k
from dni_repro.dni import MLPSyntheticGradient

DIM, CLASSES = 6, 3


def linear_sg(matrix: torch.Tensor, label_weight: torch.Tensor, bias: torch.Tensor) -> MLPSyntheticGradient:
    """A linear conditioned SG computing h matrix + y label_weight + bias, in float64."""
    sg_model = MLPSyntheticGradient(DIM, hidden_layers=0, hidden_width=1, num_classes=CLASSES).double()
    with torch.no_grad():
        sg_model.output.weight.copy_(torch.cat([matrix, label_weight]).T)
        sg_model.output.bias.copy_(bias)
    return sg_model


def random_terms(generator: torch.Generator):
    return (torch.randn(DIM, DIM, generator=generator, dtype=torch.double),
            torch.randn(CLASSES, DIM, generator=generator, dtype=torch.double),
            torch.randn(DIM, generator=generator, dtype=torch.double))


def implied_loss_gradient(sg: ScaledLinearSG, activation: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    leaf = activation.clone().requires_grad_()
    (gradient,) = torch.autograd.grad(sg.implied_loss(leaf, labels).sum(), leaf)
    return gradient


def test_implied_loss_gradient_is_the_sg_when_a_is_symmetric():
    generator = torch.Generator().manual_seed(0)
    matrix, label_weight, bias = random_terms(generator)
    sg_model = linear_sg(matrix + matrix.T, label_weight, bias)
    activation = torch.randn(5, DIM, generator=generator, dtype=torch.double)
    labels = torch.tensor([0, 1, 2, 1, 0])
    sg = ScaledLinearSG.of(sg_model, scale=4.0)
    expected = 4.0 * sg_model(activation, F.one_hot(labels, CLASSES).double())
    assert torch.allclose(implied_loss_gradient(sg, activation, labels), expected)
    assert torch.allclose(sg.gradient(activation, labels), expected)
    assert asymmetry(sg.matrix) == pytest.approx(0.0, abs=1e-12)


def test_implied_loss_gradient_uses_the_symmetric_part_otherwise():
    generator = torch.Generator().manual_seed(1)
    matrix, label_weight, bias = random_terms(generator)
    sg = ScaledLinearSG.of(linear_sg(matrix, label_weight, bias), scale=1.0)
    activation = torch.randn(5, DIM, generator=generator, dtype=torch.double)
    labels = torch.tensor([2, 1, 0, 1, 2])
    context = F.one_hot(labels, CLASSES).double()
    symmetric = activation @ (0.5 * (matrix + matrix.T)) + context @ label_weight + bias
    gradient = implied_loss_gradient(sg, activation, labels)
    assert torch.allclose(gradient, symmetric)
    assert not torch.allclose(gradient, sg.gradient(activation, labels))
    assert 0.3 < asymmetry(matrix) < 1.0


def test_exact_sg_of_a_quadratic_loss_predicts_every_loss_change_and_a_zero_sg_none():
    """Linear upper network with MSE: the true loss is quadratic in h, so a linear SG can be exact."""
    generator = torch.Generator().manual_seed(2)
    torch.manual_seed(2)
    lower = nn.Sequential(nn.Linear(4, DIM), nn.ReLU()).double()
    upper = nn.Linear(DIM, CLASSES, bias=False).double()
    inputs = torch.randn(20, 4, generator=generator, dtype=torch.double)
    labels = torch.randint(0, CLASSES, (20,), generator=generator)

    def true_loss(h, y):
        return 0.5 * (upper(h) - F.one_hot(y, CLASSES).double()).pow(2).sum(-1)

    # d/dh ½‖h W - y‖² = h W Wᵀ - y Wᵀ (W = upper.weight.T); the SG regresses 1/N of it, N = batch size.
    batch_size = 8
    weight = upper.weight.detach().T
    exact = linear_sg(weight @ weight.T / batch_size, -weight.T / batch_size, torch.zeros(DIM))
    with torch.no_grad():
        activation = lower(inputs)
        deltas = perturbations(activation, radius=0.5, count=4, generator=generator)
        scores = loss_change_agreement(activation, labels, true_loss, ScaledLinearSG.of(exact, batch_size), deltas)
        zero = MLPSyntheticGradient(DIM, hidden_layers=0, hidden_width=1, num_classes=CLASSES).double()
        zero_scores = loss_change_agreement(activation, labels, true_loss, ScaledLinearSG.of(zero, batch_size), deltas)
    assert scores["implied_correlation"] == pytest.approx(1.0, abs=1e-9)
    assert scores["implied_error"] == pytest.approx(0.0, abs=1e-9)
    assert scores["true_linear_error"] > 1e-3  # the loss is not first order at this radius: the test has teeth
    assert zero_scores["implied_error"] == pytest.approx(1.0)
    assert math.isnan(zero_scores["implied_correlation"])


def test_perturbations_have_the_requested_norm_relative_to_each_activation():
    activation = torch.tensor([[3.0, 4.0], [0.0, 1.0]], dtype=torch.double)
    deltas = perturbations(activation, radius=0.1, count=3, generator=torch.Generator().manual_seed(0))
    assert deltas.shape == (3, 2, 2)
    assert torch.allclose(deltas.norm(dim=-1), torch.tensor([0.5, 0.1], dtype=torch.double).expand(3, 2))


TINY = Setup(width=16, batch_size=8, lr=1e-3, steps=8, checkpoints=2, first_checkpoint=6, probe_per_class=3,
             perturbations=2)


@pytest.fixture(scope="module")
def digits():
    return load_mnist_5k()


def test_measuring_changes_no_parameter_optimizer_state_grad_mode_or_global_rng(digits):
    torch.manual_seed(0)
    net = build_network(28 * 28, 10, TINY)
    optimizer = torch.optim.Adam(net.parameters(), lr=TINY.lr)
    for step in range(6):
        optimizer.zero_grad(set_to_none=True)
        net.train_step(digits.train.inputs[step * 8 : step * 8 + 8], digits.train.labels[step * 8 : step * 8 + 8])
        optimizer.step()
    parameters = copy.deepcopy(net.state_dict())
    gradients = [None if p.grad is None else p.grad.clone() for p in net.parameters()]
    optimizer_state = copy.deepcopy(optimizer.state_dict())
    rng = torch.get_rng_state()
    inputs, labels = probe_set(digits, TINY.probe_per_class)
    measure(net, inputs, labels, TINY, seed=0, step=6)
    assert all(torch.equal(value, parameters[key]) for key, value in net.state_dict().items())
    for parameter, before in zip(net.parameters(), gradients):
        assert (parameter.grad is None) == (before is None) and (before is None or torch.equal(parameter.grad, before))
    after = optimizer.state_dict()
    for key, state in optimizer_state["state"].items():
        assert all(torch.equal(torch.as_tensor(value), torch.as_tensor(after["state"][key][name]))
                   for name, value in state.items())
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(module.training for module in net.modules())


def test_training_is_the_same_whether_or_not_it_is_measured_in_between(digits):
    sparse = train(digits, TINY, seed=3)
    dense = train(digits, dataclasses.replace(TINY, checkpoints=4, first_checkpoint=2), seed=3)
    assert len(dense.probe_loss) > len(sparse.probe_loss)
    assert sparse.probe_loss[TINY.steps] == dense.probe_loss[TINY.steps]
    assert sparse.final_test_error == dense.final_test_error


def test_a_short_run_gives_one_finite_row_per_layer_radius_and_checkpoint(digits):
    record = train(digits, TINY, seed=0)
    steps = checkpoint_steps(TINY)
    assert steps == [6, 8]
    assert sorted(record.probe_loss) == steps
    keys = {(row["step"], row["layer"], row["radius"]) for row in record.rows}
    assert len(record.rows) == len(keys) == len(steps) * TINY.hidden_layers * len(TINY.radii)
    assert keys == {(s, layer, r) for s in steps for layer in range(1, 6) for r in TINY.radii}
    assert all(math.isfinite(value) for row in record.rows for value in row.values())
    assert math.isfinite(record.final_test_error)


def test_checkpoints_are_log_spaced_from_the_first_to_the_last_step():
    steps = checkpoint_steps(Setup(steps=6000, checkpoints=15, first_checkpoint=10))
    assert steps[0] == 10 and steps[-1] == 6000 and len(steps) == 15
    ratios = [b / a for a, b in zip(steps, steps[1:])]
    assert max(ratios) / min(ratios) < 1.1
