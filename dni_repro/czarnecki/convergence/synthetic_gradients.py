"""The two synthetic gradient modules of the convergence study.

An SG reads the activation h (n, D) and the target y (n,) and predicts, for every example,
the gradient of that example's own loss with respect to its h: dl_i/dh_i, which is n times
the gradient of the mean loss. Predicting the per-example gradient keeps the SG's
regression targets of order one whatever n is; the lower layers divide by n (training.py).

- LinearConditionedSG: SG(h, y) = h A + y B + c, A (D, D), B (1, D), c (D,), all zero at
  the start, so the lower layers first get no gradient. With MSE and a linear upper part
  the true gradient is affine in (h, y), so this form can be exact; with log loss the true
  gradient is a sigmoid of h and this form cannot.
- SigmoidSG: SG(h, y) = (sigmoid(h a + c) - y) b, a (D, 1), c scalar, b (1, D). With a, b
  the upper part's end-to-end weights (a column, b the same as a row) and c its bias it is
  exactly the log-loss gradient of a linear upper part. All zero at the start: b = 0 makes
  the output zero, and a, c receive gradient once b has moved.
"""
import torch
from torch import nn

SG_METHODS = ("linear_sg", "sigmoid_sg")


class LinearConditionedSG(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.A = nn.Parameter(torch.zeros(width, width, dtype=torch.float64))
        self.B = nn.Parameter(torch.zeros(1, width, dtype=torch.float64))
        self.c = nn.Parameter(torch.zeros(width, dtype=torch.float64))

    def forward(self, h: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return h @ self.A + target[:, None] @ self.B + self.c


class SigmoidSG(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.a = nn.Parameter(torch.zeros(width, 1, dtype=torch.float64))
        self.c = nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.b = nn.Parameter(torch.zeros(1, width, dtype=torch.float64))

    def forward(self, h: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (torch.sigmoid(h @ self.a + self.c) - target[:, None]) @ self.b


def build_sg(method: str, width: int) -> nn.Module:
    if method == "linear_sg":
        return LinearConditionedSG(width)
    if method == "sigmoid_sg":
        return SigmoidSG(width)
    raise ValueError(f"unknown synthetic gradient {method!r}; choose one of {', '.join(SG_METHODS)}")
