"""Interfaces: what sits on the boundary between a sender layer and a receiver.

Every interface speaks the same two-message protocol:

    message = interface.send(h, context)     # sender side, forward
    ... receiver computes with message.activation ...
    interface.receive(GradientMessage(...))  # sender side, when a target arrives

`BackpropInterface` keeps the graph whole (ordinary backprop), `CutInterface`
stops every gradient (the paper's "No Bprop"), and `DNI` replaces the
backward message by a synthetic gradient that it learns to predict.
"""
from typing import Optional

import torch
from torch import nn
import torch.nn.functional as F

from dni_repro.dni.messages import ActivationMessage, GradientMessage


class Interface(nn.Module):
    # Whether the receiver should compute d(its objective)/d(activation) and send it back.
    wants_target: bool = False
    # Whether `send` needs the context (the one-hot label) of the batch.
    conditioned: bool = False

    def send(self, activation: torch.Tensor, context: Optional[torch.Tensor] = None) -> ActivationMessage:
        raise NotImplementedError

    def receive(self, message: GradientMessage) -> Optional[torch.Tensor]:
        """Consume a target gradient; returns the regression loss if there is one."""
        return None


class BackpropInterface(Interface):
    """No decoupling: the receiver's gradient flows straight into the sender's graph."""

    def send(self, activation, context=None):
        return ActivationMessage(activation, context)


class CutInterface(Interface):
    """No gradient crosses: the sender never learns from the receiver."""

    def send(self, activation, context=None):
        return ActivationMessage(activation.detach(), context)


class DNI(Interface):
    """Decoupled neural interface around one activation.

    `send` predicts dL/dh from h (and the context when conditioned), backpropagates
    that prediction into the sender's graph at once, so the sender can update
    without waiting, and passes h on detached. `receive` regresses the same
    prediction towards the target gradient, which is either bootstrapped (the
    receiver's own synthetic gradient backpropagated through the receiver) or true.
    """

    wants_target = True

    def __init__(self, sg_model: nn.Module, sg_loss_weight: float = 1.0, conditioned: bool = False):
        super().__init__()
        self.sg_model = sg_model
        self.conditioned = conditioned
        self.sg_loss_weight = sg_loss_weight
        self._prediction: Optional[torch.Tensor] = None

    def send(self, activation, context=None):
        # The SG model reads a detached copy: its loss must never reach the sender.
        prediction = self.sg_model(activation.detach(), context)
        if activation.requires_grad:
            activation.backward(prediction.detach())
        # Kept with its graph through the SG model only, for the regression in `receive`.
        self._prediction = prediction
        return ActivationMessage(activation.detach(), context)

    def receive(self, message):
        if self._prediction is None:
            raise RuntimeError("DNI.receive called before send: no synthetic gradient is waiting for a target")
        sg_loss = self.sg_loss_weight * F.mse_loss(self._prediction, message.gradient.detach())
        sg_loss.backward()
        self._prediction = None
        return sg_loss.detach()
