"""The full study: every dataset, dimension, model, loss and method, one row per run.

All runs of one (dataset, dim, model, loss) start from the same initial model, built from
`seed`, and train on the same data, also generated from `seed`; only the method differs.
Backprop runs first so that every SG run can be compared with its map.
"""
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import torch

from dni_repro.czarnecki.convergence.models import MODEL_KINDS, build_model, end_to_end_map
from dni_repro.czarnecki.convergence.optimum import global_optimum
from dni_repro.czarnecki.convergence.synthetic_gradients import build_sg
from dni_repro.czarnecki.convergence.training import LOSSES, loss_target, train
from dni_repro.data.artificial import ARTIFICIAL_DATASETS, DEFAULT_SIZE, make_artificial

DIMS = (2, 100)
# The sigmoid SG is the log-loss remedy; with MSE the linear SG is already exact.
METHODS = {"mse": ("backprop", "linear_sg"), "log": ("backprop", "linear_sg", "sigmoid_sg")}
DEFAULT_STEPS = 6000
# Plain gradient descent; each rate is well inside the stable range of its model on these
# data (the deep model's gradient reaches eleven layers, so its end-to-end step is larger).
LEARNING_RATES = {"linear": 0.1, "deep_linear": 0.04}
SG_LEARNING_RATE = 0.1


@dataclass
class ConvergenceRun:
    dataset: str
    dim: int
    model: str
    loss: str
    method: str
    losses: list[float]  # training loss before every step and after the last
    optimum_loss: float
    # End-to-end maps, each the d weights then the bias:
    final_map: torch.Tensor  # where this run ended
    optimum_map: torch.Tensor  # the global optimum
    backprop_map: torch.Tensor  # where the backprop run of the same setting ended
    least_squares_map: torch.Tensor  # the least-squares fit to the same target (the optimum under MSE)
    seconds: float

    @property
    def final_loss(self) -> float:
        return self.losses[-1]

    @property
    def steps(self) -> int:
        return len(self.losses) - 1

    def relative_gap(self, step: int = -1) -> float:
        """(loss - optimal loss) / optimal loss; rounding can make it a hair below zero."""
        return (self.losses[step] - self.optimum_loss) / self.optimum_loss

    @property
    def to_optimum(self) -> float:
        return relative_distance(self.final_map, self.optimum_map)

    @property
    def to_backprop(self) -> float:
        return relative_distance(self.final_map, self.backprop_map)

    @property
    def least_squares_cosine(self) -> float:
        """Cosine between this run's weights and the least-squares weights (bias left out)."""
        return cosine(self.final_map[:-1], self.least_squares_map[:-1])


def relative_distance(theta: torch.Tensor, reference: torch.Tensor) -> float:
    return ((theta - reference).norm() / reference.norm()).item()


def cosine(first: torch.Tensor, second: torch.Tensor) -> float:
    return (first @ second / (first.norm() * second.norm())).item()


def run_setting(
    dataset: str, dim: int, model_kind: str, loss: str, steps: int, seed: int, n: int = DEFAULT_SIZE
) -> list[ConvergenceRun]:
    inputs, raw_target = make_artificial(dataset, dim, seed, n)
    inputs, target = inputs.double(), loss_target(loss, raw_target)
    optimum, optimum_loss = global_optimum(inputs, target, loss)
    least_squares, _ = global_optimum(inputs, target, "mse")
    runs, backprop_map = [], None
    for method in METHODS[loss]:
        started = time.perf_counter()
        model = build_model(model_kind, dim, seed)
        sg = None if method == "backprop" else build_sg(method, model.width)
        losses = train(model, sg, inputs, target, loss, steps, LEARNING_RATES[model_kind], SG_LEARNING_RATE)
        final_map = end_to_end_map(model, dim)
        backprop_map = final_map if backprop_map is None else backprop_map
        runs.append(ConvergenceRun(
            dataset, dim, model_kind, loss, method, losses, optimum_loss,
            final_map, optimum, backprop_map, least_squares, time.perf_counter() - started,
        ))
    return runs


def run_grid(
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    datasets=tuple(ARTIFICIAL_DATASETS),
    dims=DIMS,
    models=MODEL_KINDS,
    losses=tuple(LOSSES),
    n: int = DEFAULT_SIZE,
    on_run: Optional[Callable[[ConvergenceRun], None]] = None,
) -> list[ConvergenceRun]:
    rows = []
    for dataset in datasets:
        for dim in dims:
            for model_kind in models:
                for loss in losses:
                    for run in run_setting(dataset, dim, model_kind, loss, steps, seed, n):
                        rows.append(run)
                        if on_run is not None:
                            on_run(run)
    return rows
