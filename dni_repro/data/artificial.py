"""Artificial datasets for the convergence study of Czarnecki et al. 2017 (their experiment A).

The paper trains on 2- and 100-dimensional versions of "four basic datasets" whose
generators are not known here; these four are this suite's reconstruction. Each works
in any dimension d >= 2 and draws only from its own `torch.Generator` seeded by `seed`
(the global RNG is never touched), so one (name, d, seed, n) always gives the same data.

`make_artificial(name, dim, seed, n)` returns
    inputs  (n, d) float32, every coordinate of order one
    target  (n,)   float32: 0./1. labels for the three classification sets (exactly n // 2
                   ones, in shuffled order), real values for `noisy_linear_regression`.
A model trained with log loss uses `target > 0` as its label; that leaves the 0/1 labels
unchanged and binarises the regression target into "y above zero".

The sets:
- two_blobs: two unit-variance Gaussians at -1 and +1 along a random unit direction. They
  overlap (Bayes error about 16%), so logistic regression has a finite optimum, at d = 100 too.
- xor_blobs: four unit-variance Gaussians at (+-1.5, +-1.5) on the first two coordinates,
  label 1 where the two signs differ; the other d - 2 coordinates are pure N(0, 1) noise.
  No linear model separates it: its optimum sits near chance.
- concentric_shells: directions uniform on the sphere, radius sqrt(d) * (1 or 2) with 5%
  radial jitter, label 1 on the outer shell. The sqrt(d) keeps coordinates of order one.
- noisy_linear_regression: x ~ N(0, I), y = x . w + N(0, 1) noise with w ~ N(0, I / d),
  so signal and noise both have variance about 1; the noise keeps the binarised labels
  from being linearly separable.
"""
import math
from collections.abc import Callable

import torch

BLOB_OFFSET = 1.0
XOR_OFFSET = 1.5
SHELL_RADII = (1.0, 2.0)
SHELL_JITTER = 0.05
REGRESSION_NOISE = 1.0
DEFAULT_SIZE = 1000

Generator = Callable[[int, int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


def balanced_labels(n: int, generator: torch.Generator) -> torch.Tensor:
    return (torch.arange(n) % 2)[torch.randperm(n, generator=generator)].float()


def two_blobs(n: int, dim: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    direction = torch.randn(dim, generator=generator)
    direction /= direction.norm()
    labels = balanced_labels(n, generator)
    sides = 2 * labels - 1
    inputs = BLOB_OFFSET * sides[:, None] * direction + torch.randn(n, dim, generator=generator)
    return inputs, labels


def xor_blobs(n: int, dim: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    labels = balanced_labels(n, generator)
    first_sign = torch.randint(0, 2, (n,), generator=generator).float() * 2 - 1
    second_sign = first_sign * (1 - 2 * labels)  # label 1: the signs differ
    inputs = torch.randn(n, dim, generator=generator)
    inputs[:, :2] += XOR_OFFSET * torch.stack([first_sign, second_sign], dim=1)
    return inputs, labels


def concentric_shells(n: int, dim: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    labels = balanced_labels(n, generator)
    directions = torch.randn(n, dim, generator=generator)
    directions /= directions.norm(dim=1, keepdim=True)
    inner, outer = SHELL_RADII
    radii = inner + (outer - inner) * labels
    radii = radii * (1 + SHELL_JITTER * torch.randn(n, generator=generator))
    return math.sqrt(dim) * radii[:, None] * directions, labels


def noisy_linear_regression(n: int, dim: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    weights = torch.randn(dim, generator=generator) / math.sqrt(dim)
    inputs = torch.randn(n, dim, generator=generator)
    return inputs, inputs @ weights + REGRESSION_NOISE * torch.randn(n, generator=generator)


ARTIFICIAL_DATASETS: dict[str, Generator] = {
    "two_blobs": two_blobs,
    "xor_blobs": xor_blobs,
    "concentric_shells": concentric_shells,
    "noisy_linear_regression": noisy_linear_regression,
}


def make_artificial(name: str, dim: int, seed: int, n: int = DEFAULT_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    if name not in ARTIFICIAL_DATASETS:
        raise ValueError(f"unknown artificial dataset {name!r}; choose one of {', '.join(ARTIFICIAL_DATASETS)}")
    if dim < 2:
        raise ValueError(f"dim={dim}: the artificial datasets need at least 2 dimensions (xor_blobs uses two)")
    generator = torch.Generator().manual_seed(seed)
    inputs, target = ARTIFICIAL_DATASETS[name](n, dim, generator)
    return inputs.float(), target.float()
