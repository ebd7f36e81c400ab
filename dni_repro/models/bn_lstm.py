"""An LSTM cell on dense inputs, with the recurrent batch normalisation of Cooijmans et al. (2016).

With `batch_norm=True`:

    gates = BN_x(W_x x_t) + BN_h(W_h h_{t-1}) + b        (order i, f, g, o)
    c_t   = sigm(f) * c_{t-1} + sigm(i) * tanh(g)
    h_t   = sigm(o) * tanh(BN_c(c_t))

BN_x and BN_h have a scale (initialised to 0.1, as that paper recommends) and no
shift, since b already is one; BN_c has both. Where this follows that paper
less closely: the statistics are shared by all time steps instead of being kept
per step, because the multi-network streams never end and have no step index to
key them by (README, fidelity). With `batch_norm=False` this is a plain LSTM.
"""
import math

import torch
from torch import nn

GAMMA_INIT = 0.1


class ScaleOnlyBatchNorm(nn.Module):
    """Batch normalisation with a learned per-feature scale and no shift."""

    def __init__(self, features: int):
        super().__init__()
        self.normalise = nn.BatchNorm1d(features, affine=False)
        self.scale = nn.Parameter(torch.full((features,), GAMMA_INIT))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.normalise(x) * self.scale


class BatchNormLSTMCell(nn.Module):
    def __init__(self, input_size: int, units: int, batch_norm: bool = True):
        super().__init__()
        self.units = units
        self.input = nn.Linear(input_size, 4 * units, bias=False)
        self.recurrent = nn.Linear(units, 4 * units, bias=False)
        self.bias = nn.Parameter(torch.zeros(4 * units))
        bound = 1.0 / math.sqrt(units)  # torch.nn.LSTM's initialisation
        for weight in (self.input.weight, self.recurrent.weight, self.bias):
            nn.init.uniform_(weight, -bound, bound)
        if batch_norm:
            self.input_norm, self.recurrent_norm = ScaleOnlyBatchNorm(4 * units), ScaleOnlyBatchNorm(4 * units)
            self.cell_norm = nn.BatchNorm1d(units)
            nn.init.constant_(self.cell_norm.weight, GAMMA_INIT)
        else:
            self.input_norm = self.recurrent_norm = self.cell_norm = nn.Identity()

    def initial_state(self, batch_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(batch_size, self.units, device=device)
        return zeros, zeros.clone()

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = state
        gates = self.input_norm(self.input(x)) + self.recurrent_norm(self.recurrent(h)) + self.bias
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(self.cell_norm(c))
        return h, c
