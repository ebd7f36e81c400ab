"""Interfaces: what sits on the boundary between a sender layer and a receiver.

Every interface speaks the same two-message protocol:

    message = interface.send(h, context)     # sender side, forward
    ... receiver computes with message.activation ...
    interface.receive(GradientMessage(...))  # sender side, when a target arrives

`BackpropInterface` keeps the graph whole (ordinary backprop), `CutInterface`
stops every gradient (the paper's "No Bprop"), `DNI` replaces the backward
message by a synthetic gradient that it learns to predict, and
`StaleGradientInterface` replaces it by an average of past gradients (the
baseline of section 3.1).

`send` takes `expects_target=False` when the caller knows that no target will
come back this step (the receiver skips its update), so nothing is kept for it.
An interface that emits a gradient fills `probe`, when it is a dict, with what it
sent and what it got back, for the SG quality measurements.
"""
from typing import Optional

import torch
from torch import nn
import torch.nn.functional as F

from dni_repro.dni.messages import ActivationMessage, GradientMessage, OutputErrorMessage


class Interface(nn.Module):
    # Whether the receiver should compute d(its objective)/d(activation) and send it back.
    wants_target: bool = False
    # Whether `send` needs the context (the one-hot label) of the batch.
    conditioned: bool = False
    # Whether the network should broadcast its output error to this interface after the loss (DFA, Kickback).
    wants_output_error: bool = False
    # Whether that interface backpropagates through the receiver, which then must keep a graph to its input.
    reads_receiver_graph: bool = False
    # Set to a dict to record the emitted gradient ("synthetic") and the target ("target").
    probe: Optional[dict] = None

    def send(
        self, activation: torch.Tensor, context: Optional[torch.Tensor] = None, expects_target: bool = True
    ) -> ActivationMessage:
        raise NotImplementedError

    def receive(self, message: GradientMessage) -> Optional[torch.Tensor]:
        """Consume a target gradient; returns the regression loss if there is one."""
        return None

    def receive_output_error(self, message: OutputErrorMessage) -> None:
        """Consume the network's output error (interfaces with `wants_output_error`)."""
        raise NotImplementedError


class BackpropInterface(Interface):
    """No decoupling: the receiver's gradient flows straight into the sender's graph."""

    def send(self, activation, context=None, expects_target=True):
        return ActivationMessage(activation, context)


class CutInterface(Interface):
    """No gradient crosses: the sender never learns from the receiver."""

    def send(self, activation, context=None, expects_target=True):
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

    def synthetic_gradient(self, activation: torch.Tensor, context: Optional[torch.Tensor] = None) -> torch.Tensor:
        """M(h, c), with a graph through the SG model only: its loss must never reach the sender."""
        return self.sg_model(activation.detach(), context)

    def regression_loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.sg_loss_weight * F.mse_loss(prediction, target.detach())

    def send(self, activation, context=None, expects_target=True):
        self._prediction = None
        if not (activation.requires_grad or expects_target):
            # Neither the sender updates nor a target comes back: the SG model has nothing to do.
            return ActivationMessage(activation.detach(), context)
        prediction = self.synthetic_gradient(activation, context)
        if activation.requires_grad:
            activation.backward(prediction.detach())
        if self.probe is not None:
            self.probe["synthetic"] = prediction.detach().clone()
        if expects_target:
            # Kept with its graph through the SG model only, for the regression in `receive`.
            self._prediction = prediction
        return ActivationMessage(activation.detach(), context)

    def receive(self, message):
        if self._prediction is None:
            raise RuntimeError("DNI.receive called before send: no synthetic gradient is waiting for a target")
        if self.probe is not None:
            self.probe["target"] = message.gradient.detach().clone()
        sg_loss = self.regression_loss(self._prediction, message.gradient)
        sg_loss.backward()
        self._prediction = None
        return sg_loss.detach()

    def regress(self, sent: ActivationMessage, message: GradientMessage) -> torch.Tensor:
        """Regress M, at its current weights, on an activation it sent earlier and the target that has
        come back for it since: for a sender that went on without waiting, whose earlier prediction's
        graph no longer matches its updated weights. Returns the regression loss."""
        if self.probe is not None:
            self.probe["target"] = message.gradient.detach().clone()
        sg_loss = self.regression_loss(self.synthetic_gradient(sent.activation, sent.context), message.gradient)
        sg_loss.backward()
        return sg_loss.detach()


class StaleGradientInterface(Interface):
    """Feeds the sender an exponential moving average of past gradients (section 3.1's baseline).

    The average is kept per batch slot: example j of this batch gets the average
    of the gradients that arrived for slot j of earlier batches, which held other
    examples (the sampler reshuffles), so it is stale in the paper's sense. It
    starts at zero, like a zero-initialised SG model, and is updated from the
    same targets a DNI would regress to: `decay=0` reuses the last batch's
    gradient, a decay near 1 approaches the long-run mean gradient.
    """

    wants_target = True

    def __init__(self, activation_shape: tuple[int, ...], batch_size: int, decay: float):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"interface.stale_decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.register_buffer("average", torch.zeros(batch_size, *activation_shape))

    def send(self, activation, context=None, expects_target=True):
        if activation.requires_grad:
            activation.backward(self.average)
        if self.probe is not None:
            self.probe["synthetic"] = self.average.clone()
        return ActivationMessage(activation.detach(), context)

    def receive(self, message):
        if self.probe is not None:
            self.probe["target"] = message.gradient.detach().clone()
        self.average.mul_(self.decay).add_(message.gradient.detach(), alpha=1.0 - self.decay)
        return None
