"""Experiment B of Czarnecki et al. 2017: how well each layer's SG approximates the loss.

A 5-hidden-layer ReLU network is trained on MNIST with a linear, label-conditioned
synthetic gradient g(h, y) = h A + y B + c after every hidden layer (bootstrapped
targets, as in the DNI paper). A linear g is the gradient of a quadratic only when A
is symmetric, so the SG's implied loss is defined with the symmetric part A_s:

    L̂(h, y) = N (½ h A_s hᵀ + (y B + c) hᵀ)   (+ a constant that may depend on y)

N is the training batch size: the SG regresses the gradient of the *batch-mean*
loss, (1/N) dℓ/dh for each example, so N g is its estimate of the per-example
gradient. Because of the unknown per-label constant, L̂ is compared with the true
loss through loss *changes*: for random perturbations δ of a layer's activation,
ΔL = ℓ(upper(h + δ), y) − ℓ(upper(h), y) through the real layers above, against
ΔL̂ = L̂(h + δ, y) − L̂(h, y). Each δ has norm `radius` × ‖h‖ of its own example.

Measuring works on a float64 copy of the network in eval mode, without autograd
on the network, and draws its perturbations from its own generator, so training
runs exactly as it would without it.
"""
import copy
import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
import torch.nn.functional as F

from dni_repro.data.tensors import Dataset
from dni_repro.dni import DNI, MLPSyntheticGradient, one_hot
from dni_repro.models.feedforward import DecoupledStack

LossFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (h, labels) -> per-example loss


@dataclass
class Setup:
    hidden_layers: int = 5
    width: int = 256
    batch_size: int = 128
    lr: float = 1e-4
    steps: int = 6000
    checkpoints: int = 15
    # The first measurement waits for the bootstrapping chain: layer i's SG only gets a
    # nonzero target once the SGs above it are nonzero, i.e. after (hidden_layers - i + 1) steps.
    first_checkpoint: int = 10
    probe_per_class: int = 50
    perturbations: int = 16
    # Small: loss changes are nearly first order. Large: curvature (and ReLU kinks) matter.
    radii: tuple[float, ...] = (0.05, 0.5)


def checkpoint_steps(setup: Setup) -> list[int]:
    """Log-spaced from `first_checkpoint` to the last step: the SGs change fastest early on."""
    if setup.steps <= setup.first_checkpoint:
        return [setup.steps]
    ratio = setup.steps / setup.first_checkpoint
    steps = {round(setup.first_checkpoint * ratio ** (k / (setup.checkpoints - 1))) for k in range(setup.checkpoints)}
    return sorted(steps)


def build_network(input_dim: int, num_classes: int, setup: Setup) -> DecoupledStack:
    """Linear+ReLU hidden layers (no batch norm), a linear classifier, a linear cDNI after every hidden layer."""
    layers: list[nn.Module] = []
    features = input_dim
    for index in range(setup.hidden_layers):
        flatten = [nn.Flatten()] if index == 0 else []
        layers.append(nn.Sequential(*flatten, nn.Linear(features, setup.width), nn.ReLU()))
        features = setup.width
    layers.append(nn.Linear(features, num_classes))
    # No hidden layer: each SG is one zero-initialised linear map of [h, one-hot y], i.e. h A + y B + c.
    interfaces = [
        DNI(MLPSyntheticGradient(setup.width, hidden_layers=0, hidden_width=setup.width, num_classes=num_classes),
            conditioned=True)
        for _ in range(setup.hidden_layers)
    ]
    return DecoupledStack(layers, interfaces, num_classes)


def linear_sg_terms(sg_model: MLPSyntheticGradient) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(A, B, c) of g(h, y) = h A + y B + c for a linear, conditioned MLP SG."""
    if len(sg_model.hidden) or not sg_model.num_classes:
        raise ValueError("the implied loss needs a linear (hidden_layers=0), label-conditioned SG model")
    weight = sg_model.output.weight.detach()  # (D, D + classes): g = [h, y] weightᵀ + bias
    dim = weight.shape[0]
    return weight[:, :dim].T, weight[:, dim:].T, sg_model.output.bias.detach()


def asymmetry(matrix: torch.Tensor) -> float:
    """‖A − A_s‖ / ‖A‖ (Frobenius): how much of A no quadratic loss can account for."""
    norm = matrix.norm().item()
    if norm == 0.0:
        return math.nan
    return (0.5 * (matrix - matrix.T)).norm().item() / norm


@dataclass
class ScaledLinearSG:
    """One layer's linear SG read as a per-example model of the loss, scaled by `scale` (the batch size).

    `gradient` is the SG itself, scale g(h, y); `implied_loss` is the quadratic whose
    gradient is the same affine map with A replaced by its symmetric part A_s.
    """

    matrix: torch.Tensor
    label_weight: torch.Tensor
    bias: torch.Tensor
    num_classes: int
    scale: float

    @classmethod
    def of(cls, sg_model: MLPSyntheticGradient, scale: float) -> "ScaledLinearSG":
        return cls(*linear_sg_terms(sg_model), sg_model.num_classes, scale)

    def _label_term(self, activation: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        context = one_hot(labels, self.num_classes).to(activation.dtype)
        return context @ self.label_weight.to(activation.dtype) + self.bias.to(activation.dtype)

    def gradient(self, activation: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.scale * (activation @ self.matrix.to(activation.dtype) + self._label_term(activation, labels))

    def implied_loss(self, activation: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        symmetric = (0.5 * (self.matrix + self.matrix.T)).to(activation.dtype)
        quadratic = 0.5 * ((activation @ symmetric) * activation).sum(-1)
        return self.scale * (quadratic + (self._label_term(activation, labels) * activation).sum(-1))


def pearson(x: torch.Tensor, y: torch.Tensor) -> float:
    """NaN when either side is constant (e.g. a still-zero SG)."""
    x, y = x - x.mean(), y - y.mean()
    denominator = (x.norm() * y.norm()).item()
    return (x @ y).item() / denominator if denominator > 0 else math.nan


def relative_error(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    """‖estimate − reference‖ / ‖reference‖: 0 is exact, 1 is what predicting no change scores."""
    return ((estimate - reference).norm() / reference.norm()).item()


def perturbations(activation: torch.Tensor, radius: float, count: int, generator: torch.Generator) -> torch.Tensor:
    """(count, N, D) random directions, each scaled to `radius` × the norm of its example's activation."""
    directions = torch.randn((count, *activation.shape), generator=generator, dtype=activation.dtype)
    directions = directions / directions.norm(dim=-1, keepdim=True)
    return radius * activation.norm(dim=-1, keepdim=True) * directions


def loss_change_agreement(
    activation: torch.Tensor, labels: torch.Tensor, true_loss: LossFunction, sg: ScaledLinearSG, deltas: torch.Tensor
) -> dict[str, float]:
    """How well three predictions of ΔL track it over every (perturbation, example) pair.

    implied: ΔL̂ from the implied loss, the quantity under study. sg_linear: the
    SG's own first-order prediction g(h, y)·δ, which keeps A's antisymmetric part,
    to tell a wrong SG from a lost antisymmetric part. true_linear: the true
    gradient's ∇ℓ·δ, to show how far from first order the true loss is at this radius.
    """
    count = deltas.shape[0]
    repeated_labels = labels.repeat(count)
    base = activation.repeat(count, 1)
    moved = base + deltas.flatten(0, 1)
    true_change = true_loss(moved, repeated_labels) - true_loss(base, repeated_labels)
    with torch.enable_grad():
        leaf = activation.detach().requires_grad_()
        (true_gradient,) = torch.autograd.grad(true_loss(leaf, labels).sum(), leaf)
    predictions = {
        "implied": sg.implied_loss(moved, repeated_labels) - sg.implied_loss(base, repeated_labels),
        "sg_linear": (deltas * sg.gradient(activation, labels)).sum(-1).flatten(),
        "true_linear": (deltas * true_gradient).sum(-1).flatten(),
    }
    scores = {}
    for name, predicted in predictions.items():
        scores[f"{name}_correlation"] = pearson(predicted, true_change)
        scores[f"{name}_error"] = relative_error(predicted, true_change)
    return scores


def probe_set(dataset: Dataset, per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `per_class` test digits of each class: fixed, balanced, never trained on."""
    indices = torch.cat(
        [torch.nonzero(dataset.test.labels == digit).flatten()[:per_class] for digit in range(dataset.num_classes)]
    )
    return dataset.test.inputs[indices], dataset.test.labels[indices]


def measure(
    net: DecoupledStack, inputs: torch.Tensor, labels: torch.Tensor, setup: Setup, seed: int, step: int
) -> list[dict]:
    """One row per (hidden layer, radius): how well that layer's implied loss tracks the true loss changes.

    Layer i (1 = next to the input) is scored through the real layers above it and
    the per-example cross-entropy. The same seed gives the same directions at every
    checkpoint, so checkpoints differ only by the network.
    """
    frozen = copy.deepcopy(net).double().eval()
    generator = torch.Generator().manual_seed(seed)
    rows = []
    with torch.no_grad():
        activation = inputs.double()
        for index, interface in enumerate(frozen.interfaces):
            activation = frozen.layers[index](activation)
            upper = frozen.layers[index + 1 :]

            def true_loss(h: torch.Tensor, y: torch.Tensor, upper=upper) -> torch.Tensor:
                for layer in upper:
                    h = layer(h)
                return F.cross_entropy(h, y, reduction="none")

            sg = ScaledLinearSG.of(interface.sg_model, scale=setup.batch_size)
            matrix_asymmetry = asymmetry(sg.matrix)
            for radius in setup.radii:
                deltas = perturbations(activation, radius, setup.perturbations, generator)
                agreement = loss_change_agreement(activation, labels, true_loss, sg, deltas)
                rows.append({"step": step, "layer": index + 1, "radius": radius,
                             "asymmetry": matrix_asymmetry, **agreement})
    return rows


def connected_outputs(net: DecoupledStack, inputs: torch.Tensor) -> torch.Tensor:
    """Logits of the connected network, from a copy in eval mode."""
    with torch.no_grad():
        return copy.deepcopy(net).eval()(inputs)


@dataclass
class TrainingRecord:
    rows: list[dict]
    probe_loss: dict[int, float]  # step -> mean cross-entropy of the probe digits
    final_test_error: float  # %, the connected network on the whole test split


def train(dataset: Dataset, setup: Setup, seed: int) -> TrainingRecord:
    """Adam on every layer and SG, batches from a generator of `seed`, measuring at `checkpoint_steps`."""
    torch.manual_seed(seed)
    input_dim = math.prod(dataset.input_shape)
    net = build_network(input_dim, dataset.num_classes, setup)
    optimizer = torch.optim.Adam(net.parameters(), lr=setup.lr)
    batches = torch.Generator().manual_seed(seed)
    probe_inputs, probe_labels = probe_set(dataset, setup.probe_per_class)
    checkpoints = set(checkpoint_steps(setup))
    rows, probe_loss = [], {}
    for step in range(1, setup.steps + 1):
        indices = torch.randint(0, len(dataset.train), (setup.batch_size,), generator=batches)
        optimizer.zero_grad(set_to_none=True)
        net.train_step(dataset.train.inputs[indices], dataset.train.labels[indices])
        optimizer.step()
        if step in checkpoints:
            rows += measure(net, probe_inputs, probe_labels, setup, seed, step)
            probe_loss[step] = F.cross_entropy(connected_outputs(net, probe_inputs), probe_labels).item()
    wrong = connected_outputs(net, dataset.test.inputs).argmax(dim=1) != dataset.test.labels
    return TrainingRecord(rows, probe_loss, 100.0 * wrong.float().mean().item())
