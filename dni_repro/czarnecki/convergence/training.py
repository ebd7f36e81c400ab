"""Losses and one full-batch gradient-descent run, with backprop or with a synthetic gradient.

Every step takes the whole training set (full batch) and applies plain gradient descent,
p <- p - lr * dp, to the model and, when there is one, to the SG, jointly. With an SG:
- the upper part (nothing for the linear model) learns from its true gradient;
- the SG is regressed (0.5 * squared L2, mean over examples) onto the true per-example
  gradient n * dL/dh that the upper part computes on the same step, with h and y detached,
  so its loss never reaches the model;
- the lower part backpropagates the SG's prediction divided by n, as backprop of the mean
  loss would the true per-example gradients.
Everything runs in float64 so that gaps to the optimum far below float32 precision are real.
"""
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from dni_repro.czarnecki.convergence.models import SplitModel

LOSSES = {
    "mse": lambda output, target: 0.5 * ((output - target) ** 2).mean(),
    "log": F.binary_cross_entropy_with_logits,
}


def loss_target(loss: str, target: torch.Tensor) -> torch.Tensor:
    """The regression target for MSE; for log loss the label target > 0 (see data/artificial.py)."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    return (target if loss == "mse" else (target > 0)).double()


@dataclass
class StepGradients:
    model: list[torch.Tensor]  # aligned with model.parameters()
    sg: list[torch.Tensor]  # aligned with sg.parameters(); empty for backprop
    loss: float  # the training loss before this step's update


def step_gradients(
    model: SplitModel, sg: Optional[nn.Module], inputs: torch.Tensor, target: torch.Tensor, loss: str
) -> StepGradients:
    h = model.lower(inputs)
    h_cut = h.detach().requires_grad_()
    value = LOSSES[loss](model.upper(h_cut).squeeze(1), target)
    true_gradient, *upper = torch.autograd.grad(value, [h_cut, *model.upper.parameters()])
    sg_gradients = []
    if sg is None:
        sent = true_gradient
    else:
        n = len(target)
        synthetic = sg(h.detach(), target)
        sg_loss = 0.5 * ((synthetic - n * true_gradient) ** 2).sum(1).mean()
        sg_gradients = list(torch.autograd.grad(sg_loss, list(sg.parameters())))
        sent = synthetic.detach() / n
    lower = torch.autograd.grad(h, list(model.lower.parameters()), sent)
    return StepGradients([*lower, *upper], sg_gradients, value.item())


def descend(parameters, gradients: list[torch.Tensor], lr: float) -> None:
    with torch.no_grad():
        for parameter, gradient in zip(parameters, gradients):
            parameter.sub_(lr * gradient)


def train(
    model: SplitModel,
    sg: Optional[nn.Module],
    inputs: torch.Tensor,
    target: torch.Tensor,
    loss: str,
    steps: int,
    lr: float,
    sg_lr: float,
) -> list[float]:
    """Train in place; returns the training loss before every step and after the last."""
    losses = []
    for _ in range(steps):
        gradients = step_gradients(model, sg, inputs, target, loss)
        losses.append(gradients.loss)
        descend(model.parameters(), gradients.model, lr)
        if sg is not None:
            descend(sg.parameters(), gradients.sg, sg_lr)
    with torch.no_grad():
        losses.append(LOSSES[loss](model(inputs), target).item())
    return losses
