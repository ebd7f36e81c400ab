"""Linear and deep linear models, cut in two where the synthetic gradient sits.

Both map x (n, d) to one scalar per example. `lower` computes the activation h the SG
sees; `upper` maps h to the output with its true gradient.
- linear: h = x W + b is the output itself, so `upper` is the identity and the SG
  replaces dL/dh at the output.
- deep_linear: 10 hidden linear layers of width min(d, MAX_WIDTH) and a linear output
  layer, every layer with a bias. The SG sits after hidden layer 5: the five layers below
  learn from it, the five above and the output layer from their true gradient. Any width
  can express every linear map to a scalar; the cap keeps eleven layers cheap at d = 100.

Initialisation: the linear model starts at zero (the problem is convex, any start works).
The deep model's first layer has orthonormal rows and its hidden layers are random
orthogonal matrices, so the first ten layers together project x orthogonally onto `width`
directions and keep lengths there: neither the forward signal nor the backward gradient
grows or shrinks with depth (Saxe et al. 2014). The output row starts at zero, so the deep model, like the linear one,
starts at the zero map; its gradient is nonzero at once (the hidden layers carry x up to it unshrunk),
and as it grows it carries gradient down to the layers below. Biases start at zero.
"""
from dataclasses import dataclass

import torch
from torch import nn

HIDDEN_LAYERS = 10
SG_AFTER_HIDDEN_LAYER = 5
MAX_WIDTH = 16
MODEL_KINDS = ("linear", "deep_linear")


@dataclass
class SplitModel:
    lower: nn.Sequential
    upper: nn.Sequential  # empty for the linear model: an empty Sequential is the identity

    @property
    def width(self) -> int:
        """Width of h, the activation the SG reads and predicts the gradient of."""
        return self.lower[-1].out_features

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.upper(self.lower(inputs)).squeeze(1)

    def parameters(self) -> list[nn.Parameter]:
        return [*self.lower.parameters(), *self.upper.parameters()]


def deep_width(dim: int) -> int:
    return min(dim, MAX_WIDTH)


def random_orthonormal_rows(rows: int, columns: int, generator: torch.Generator) -> torch.Tensor:
    """A (rows, columns) matrix with orthonormal rows (rows <= columns), Haar-random."""
    q, r = torch.linalg.qr(torch.randn(columns, rows, generator=generator, dtype=torch.float64))
    return (q * torch.sign(torch.diagonal(r))).T


def linear_layer(fan_in: int, fan_out: int, weight: torch.Tensor) -> nn.Linear:
    layer = nn.Linear(fan_in, fan_out, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.zero_()
    return layer


def build_model(kind: str, dim: int, seed: int) -> SplitModel:
    if kind == "linear":
        return SplitModel(nn.Sequential(linear_layer(dim, 1, torch.zeros(1, dim))), nn.Sequential())
    if kind != "deep_linear":
        raise ValueError(f"unknown model {kind!r}; choose one of {', '.join(MODEL_KINDS)}")
    generator = torch.Generator().manual_seed(seed)
    width = deep_width(dim)
    layers = [linear_layer(dim, width, random_orthonormal_rows(width, dim, generator))]
    for _ in range(HIDDEN_LAYERS - 1):
        layers.append(linear_layer(width, width, random_orthonormal_rows(width, width, generator)))
    layers.append(linear_layer(width, 1, torch.zeros(1, width)))
    return SplitModel(nn.Sequential(*layers[:SG_AFTER_HIDDEN_LAYER]), nn.Sequential(*layers[SG_AFTER_HIDDEN_LAYER:]))


def affine_map(function, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(w (dim,...), b) of an affine function f(x) = x w + b, read off f(0) and f(e_i)."""
    with torch.no_grad():
        bias = function(torch.zeros(1, dim, dtype=torch.float64))
        weights = function(torch.eye(dim, dtype=torch.float64)) - bias
    return weights, bias[0]


def end_to_end_map(model: SplitModel, dim: int) -> torch.Tensor:
    """The model's whole linear map as one vector: its d weights, then its bias."""
    weights, bias = affine_map(model, dim)
    return torch.cat([weights, bias.reshape(1)])
