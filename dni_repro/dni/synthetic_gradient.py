"""Synthetic-gradient models: M(h, c) ~ dL/dh.

Both models end in a plain linear (or conv) layer whose weight *and* bias start at
zero, so a fresh interface emits exactly zero gradient, and nothing (no BN, no
ReLU) follows that layer, because a gradient can take any sign and scale.
"""
from typing import Optional

import torch
from torch import nn
import torch.nn.functional as F


def _zero_init(layer: nn.Module) -> nn.Module:
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class MLPSyntheticGradient(nn.Module):
    """For flat activations (B, D): [linear, BN, ReLU] x hidden_layers, then linear.

    With `num_classes > 0` the model is conditioned (cDNI): the one-hot label is
    concatenated to its input.
    """

    def __init__(self, activation_dim: int, hidden_layers: int, hidden_width: int, num_classes: int = 0):
        super().__init__()
        self.num_classes = num_classes
        layers: list[nn.Module] = []
        width_in = activation_dim + num_classes
        for _ in range(hidden_layers):
            layers += [nn.Linear(width_in, hidden_width), nn.BatchNorm1d(hidden_width), nn.ReLU()]
            width_in = hidden_width
        self.hidden = nn.Sequential(*layers)
        self.output = _zero_init(nn.Linear(width_in, activation_dim))

    def forward(self, activation: torch.Tensor, context: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = activation.flatten(1)
        if self.num_classes:
            x = torch.cat([x, context.to(x.dtype)], dim=1)
        return self.output(self.hidden(x)).view_as(activation)


class ConvSyntheticGradient(nn.Module):
    """For feature maps (B, C, H, W): resolution-preserving convs, no pooling.

    Conditioning adds one channel per class: the label's channel is all ones and
    the others are zeros (appendix A.1).
    """

    def __init__(
        self, channels: int, hidden_layers: int, hidden_channels: int, kernel_size: int = 5, num_classes: int = 0
    ):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"interface.sg.kernel_size must be odd to preserve resolution, got {kernel_size}")
        self.num_classes = num_classes
        padding = kernel_size // 2
        layers: list[nn.Module] = []
        channels_in = channels + num_classes
        for _ in range(hidden_layers):
            layers += [
                nn.Conv2d(channels_in, hidden_channels, kernel_size, padding=padding),
                nn.BatchNorm2d(hidden_channels),
                nn.ReLU(),
            ]
            channels_in = hidden_channels
        self.hidden = nn.Sequential(*layers)
        self.output = _zero_init(nn.Conv2d(channels_in, channels, kernel_size, padding=padding))

    def forward(self, activation: torch.Tensor, context: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = activation
        if self.num_classes:
            height, width = x.shape[-2:]
            masks = context.to(x.dtype)[:, :, None, None].expand(-1, -1, height, width)
            x = torch.cat([x, masks], dim=1)
        return self.output(self.hidden(x))


class ReLUSyntheticGradient(nn.Module):
    """For the recurrent and multi-network experiments (A.3, A.4): [linear, ReLU] x hidden_layers,
    then the zero-initialised linear output. No batch norm: its input is one LSTM output or message."""

    def __init__(self, input_size: int, output_size: int, hidden_layers: int, hidden_width: int):
        super().__init__()
        layers: list[nn.Module] = []
        width_in = input_size
        for _ in range(hidden_layers):
            layers += [nn.Linear(width_in, hidden_width), nn.ReLU()]
            width_in = hidden_width
        self.hidden = nn.Sequential(*layers)
        self.output = _zero_init(nn.Linear(width_in, output_size))

    def forward(self, activation: torch.Tensor) -> torch.Tensor:
        return self.output(self.hidden(activation))


def build_synthetic_gradient_model(
    activation_shape: tuple[int, ...],
    hidden_layers: int,
    hidden_width: int,
    kernel_size: int = 5,
    num_classes: int = 0,
) -> nn.Module:
    """Pick the MLP or conv model from the shape of one activation (without batch)."""
    if len(activation_shape) == 3:
        return ConvSyntheticGradient(activation_shape[0], hidden_layers, hidden_width, kernel_size, num_classes)
    dim = 1
    for size in activation_shape:
        dim *= size
    return MLPSyntheticGradient(dim, hidden_layers, hidden_width, num_classes)


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return F.one_hot(labels, num_classes).float()
