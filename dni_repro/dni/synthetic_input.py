"""Synthetic-input models: I(x) ~ h, the forward-pass counterpart of an SG model.

Used by complete unlock (section 3.1, appendix A.1): a layer that reads a
synthetic input need not wait for the layers below it to run. The model sees the
network's data only, never the label, so no label information can leak into the
forward path that the layers are trained on.
"""
import torch
from torch import nn


class SyntheticInputModel(nn.Module):
    """Data (B, *input_shape) -> predicted activation (B, *activation_shape).

    [linear, BN, ReLU] x hidden_layers, then linear: the SG model's architecture
    (A.1 uses one hidden layer). The output layer keeps PyTorch's default
    initialisation: unlike a gradient, an activation has no natural zero.
    """

    def __init__(self, input_dim: int, activation_shape: tuple[int, ...], hidden_layers: int, hidden_width: int):
        super().__init__()
        self.activation_shape = tuple(activation_shape)
        output_dim = 1
        for size in self.activation_shape:
            output_dim *= size
        layers: list[nn.Module] = [nn.Flatten()]
        width_in = input_dim
        for _ in range(hidden_layers):
            layers += [nn.Linear(width_in, hidden_width), nn.BatchNorm1d(hidden_width), nn.ReLU()]
            width_in = hidden_width
        layers.append(nn.Linear(width_in, output_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        return self.net(data).view(data.shape[0], *self.activation_shape)
