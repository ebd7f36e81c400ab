"""The two messages that cross a decoupled interface.

A sender and a receiver talk only through these. Across a decoupled interface
(DNI, or a cut) everything in them is a plain, detached tensor, so the same
exchange works when the two sides live in different processes or on different
devices: the transport only has to move the tensors. Only `BackpropInterface`,
which by definition couples the two sides, sends its activation with the graph.
"""
from dataclasses import dataclass
from typing import Optional

import torch


@dataclass
class ActivationMessage:
    """Forward: the sender's activation, cut from the sender's graph."""

    activation: torch.Tensor
    # Side information the sender saw with this batch (the one-hot label for cDNI).
    context: Optional[torch.Tensor] = None


@dataclass
class GradientMessage:
    """Backward: the gradient of the receiver's objective w.r.t. the activation it got.

    `bootstrapped` says whether it was produced by the receiver's own synthetic
    gradient (True) or by a true loss (False). The DNI regresses to either the
    same way; the flag is there for whoever inspects the exchange (tests, analysis).
    """

    gradient: torch.Tensor
    bootstrapped: bool


@dataclass
class OutputErrorMessage:
    """Backward, broadcast: the loss's gradient w.r.t. the network's output, to every layer that asked.

    Direct Feedback Alignment and Kickback build a layer's backward message from
    this global error instead of the gradient of the layer above. `error` is
    dL/dlogits, (batch, classes); `labels` are the batch's class indices.
    """

    error: torch.Tensor
    labels: torch.Tensor
