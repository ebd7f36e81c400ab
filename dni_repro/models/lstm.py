"""The LSTM core of the paper's recurrent experiments: the form of Graves (2013), eqs. 7-11.

    i_t = sigm(W_xi x_t + W_hi h_{t-1} + w_ci * c_{t-1} + b_i)
    f_t = sigm(W_xf x_t + W_hf h_{t-1} + w_cf * c_{t-1} + b_f)
    c_t = f_t * c_{t-1} + i_t * tanh(W_xc x_t + W_hc h_{t-1} + b_c)
    o_t = sigm(W_xo x_t + W_ho h_{t-1} + w_co * c_t + b_o)
    h_t = o_t * tanh(c_t)

The peephole weights w_c* are diagonal (one per unit) and optional
(`model.peepholes`); without them this is exactly torch.nn.LSTM's cell, with
its gate order (i, f, g, o), which the tests use as a reference.

Inputs are symbols, so W_x x_t is a row lookup: the whole chunk's input
projections are gathered in one call before the time loop.
"""
import math

import torch
from torch import nn


class LSTMCore(nn.Module):
    def __init__(self, vocab_size: int, units: int, peepholes: bool = True):
        super().__init__()
        self.units = units
        self.input_weight = nn.Parameter(torch.empty(vocab_size, 4 * units))  # rows of W_x for one-hot inputs
        self.recurrent = nn.Linear(units, 4 * units)  # W_h and the biases b
        self.peephole = nn.Parameter(torch.zeros(3, units)) if peepholes else None
        bound = 1.0 / math.sqrt(units)  # torch.nn.LSTM's initialisation
        nn.init.uniform_(self.input_weight, -bound, bound)
        nn.init.uniform_(self.recurrent.weight, -bound, bound)
        nn.init.uniform_(self.recurrent.bias, -bound, bound)

    def initial_state(self, batch_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(batch_size, self.units, device=device)
        return zeros, zeros.clone()

    def project_inputs(self, symbols: torch.Tensor) -> torch.Tensor:
        """(T, B) symbol ids -> (T, B, 4U) input contributions to the gates."""
        return self.input_weight[symbols]

    def step(self, projected_input: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gates = projected_input + self.recurrent(h)
        i, f, g, o = gates.chunk(4, dim=1)
        if self.peephole is not None:
            i = i + self.peephole[0] * c
            f = f + self.peephole[1] * c
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        if self.peephole is not None:
            o = o + self.peephole[2] * c
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c

    def unroll(
        self, symbols: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run over (T, B) symbols from state (h, c): outputs (T, B, U) and the final state."""
        projected = self.project_inputs(symbols)
        outputs = []
        for t in range(symbols.shape[0]):
            h, c = self.step(projected[t], h, c)
            outputs.append(h)
        return torch.stack(outputs), h, c
