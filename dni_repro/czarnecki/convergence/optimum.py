"""The global optimum of each problem: the best linear map, bias included.

Every model of the study computes a linear map of x plus a bias, and the deep linear model
can express every such map (its first layer reaches any direction, the rest can carry one).
So the global optimum of every run is the optimum of the bias-augmented linear model:
- MSE: least squares, in closed form;
- log loss: Newton's method with backtracking on the convex log loss, run until the
  gradient norm is below GRADIENT_TOLERANCE. A finite optimum needs labels that no
  hyperplane separates; the solve checks that the loss is strictly convex there.
"""
import torch

from dni_repro.czarnecki.convergence.training import LOSSES

GRADIENT_TOLERANCE = 1e-11
MIN_CURVATURE = 1e-6
MAX_NEWTON_STEPS = 100


def with_bias_column(inputs: torch.Tensor) -> torch.Tensor:
    return torch.cat([inputs, torch.ones(len(inputs), 1, dtype=inputs.dtype)], dim=1)


def logistic_newton(design: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    theta = torch.zeros(design.shape[1], dtype=torch.float64)

    def loss_at(candidate: torch.Tensor) -> float:
        return LOSSES["log"](design @ candidate, labels).item()

    for _ in range(MAX_NEWTON_STEPS):
        probabilities = torch.sigmoid(design @ theta)
        gradient = design.T @ (probabilities - labels) / len(labels)
        hessian = (design.T * (probabilities * (1 - probabilities))) @ design / len(labels)
        if torch.linalg.eigvalsh(hessian)[0] < MIN_CURVATURE:
            break  # flat along some direction: the iterates are running off to infinity
        if gradient.norm() < GRADIENT_TOLERANCE:
            return theta
        step, size, current = torch.linalg.solve(hessian, gradient), 1.0, loss_at(theta)
        while loss_at(theta - size * step) > current and size > 1e-12:
            size /= 2
        theta = theta - size * step
    raise RuntimeError(
        "the log-loss optimum did not converge to a strictly convex minimum: the labels may be "
        "linearly separable, so logistic regression has no finite optimum; make the classes overlap more"
    )


def global_optimum(inputs: torch.Tensor, target: torch.Tensor, loss: str) -> tuple[torch.Tensor, float]:
    """The optimal end-to-end map (d weights, then the bias) and its training loss."""
    design = with_bias_column(inputs)
    if loss == "mse":
        theta = torch.linalg.lstsq(design, target[:, None]).solution[:, 0]
    else:
        theta = logistic_newton(design, target)
    return theta, LOSSES[loss](design @ theta, target).item()
