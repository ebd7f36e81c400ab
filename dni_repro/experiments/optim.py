"""Optimizers and the paper's step-wise learning-rate schedule."""
import torch

from dni_repro.names import OptimizerName


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


class StepDecaySchedule:
    """lr times lr_decay_factor for every decay point already passed.

    The paper (A.1) divides by 10 at 300k and 400k of 500k steps, i.e. at
    fractions 0.6 and 0.8; fractions keep that shape when max_steps changes.
    Built once from the config, so the training loop reads only plain numbers.
    """

    def __init__(self, optimizer_cfg, max_steps: int):
        self.base_lr = float(optimizer_cfg.lr)
        self.factor = float(optimizer_cfg.lr_decay_factor)
        self.decay_steps = [round(fraction * max_steps) for fraction in optimizer_cfg.lr_decay_at]

    def lr_at(self, step: int) -> float:
        passed = sum(1 for decay_step in self.decay_steps if step >= decay_step)
        return self.base_lr * self.factor**passed
