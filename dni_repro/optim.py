"""Optimizers and the paper's step-wise learning-rate schedule."""
import torch

from dni_repro.config import OptimizerName


def build_optimizer(optimizer_cfg, parameters) -> torch.optim.Optimizer:
    parameters = list(parameters)
    if optimizer_cfg.name == OptimizerName.adam:
        return torch.optim.Adam(
            parameters,
            lr=optimizer_cfg.lr,
            betas=tuple(optimizer_cfg.betas),
            eps=optimizer_cfg.eps,
            weight_decay=optimizer_cfg.weight_decay,
        )
    return torch.optim.SGD(
        parameters, lr=optimizer_cfg.lr, momentum=optimizer_cfg.momentum, weight_decay=optimizer_cfg.weight_decay
    )


def lr_at_step(optimizer_cfg, step: int, max_steps: int) -> float:
    """lr times lr_decay_factor for every decay point already passed.

    The paper (A.1) divides by 10 at 300k and 400k of 500k steps, i.e. at
    fractions 0.6 and 0.8; fractions keep that shape when max_steps changes.
    """
    passed = sum(1 for fraction in optimizer_cfg.lr_decay_at if step >= round(fraction * max_steps))
    return optimizer_cfg.lr * optimizer_cfg.lr_decay_factor**passed
