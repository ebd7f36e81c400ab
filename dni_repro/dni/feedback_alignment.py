"""Feedback Alignment, Direct Feedback Alignment and Kickback in the SG framework (Czarnecki et al. 2017, sec. 5).

Each method replaces the backward message a layer gets, dL/dh_i, by something
cheaper to produce. Written as the synthetic gradient it amounts to:

- Feedback Alignment (Lillicrap et al. 2016): (delta_{i+1}) R_{i+1}, where delta_{i+1} is
  the receiver's error at its linear output and R_{i+1} a fixed random matrix in place of
  the receiver's forward weights W_{i+1}. An SG that is linear in the next layer's error,
  fixed and random, never trained. Still update-locked: it waits for delta_{i+1}.
- Direct Feedback Alignment (Nokland 2016): e R_i, with e = dL/d(output) and R_i fixed
  random. Every layer hears the output error directly, so layers are unlocked from one
  another, but not from the forward pass. Fixed, never trained.
- Kickback (Balduzzi et al. 2015): the per-example scalar error broadcast to the receiver's
  units, backpropagated through the receiver alone. Nothing is learned for the message; it
  uses the receiver's live forward weights.

Backprop (the exact dL/dh_i) and DNI (a learned SG(h_i, y)) are the two ends of this line.
"""
import math

import torch
from torch import nn
import torch.nn.functional as F

from dni_repro.dni.interfaces import Interface
from dni_repro.dni.messages import ActivationMessage, OutputErrorMessage


class _FeedbackAlignedLinear(torch.autograd.Function):
    """y = x W^T + b whose backward sends grad_y @ R to x instead of grad_y @ W."""

    @staticmethod
    def forward(ctx, inputs, weight, bias, feedback):
        ctx.save_for_backward(inputs, feedback)
        return F.linear(inputs, weight, bias)

    @staticmethod
    def backward(ctx, grad_output):
        inputs, feedback = ctx.saved_tensors
        grad_input = grad_output @ feedback if ctx.needs_input_grad[0] else None
        grad_weight = grad_output.t() @ inputs if ctx.needs_input_grad[1] else None
        grad_bias = grad_output.sum(0) if ctx.needs_input_grad[2] else None
        return grad_input, grad_weight, grad_bias, None


class FeedbackAlignmentLinear(nn.Linear):
    """A linear layer that learns as usual but sends its input a gradient through a fixed random matrix.

    `feedback` is a buffer (saved with the model, never in `parameters()`), drawn
    from the same distribution as nn.Linear's initial weights.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        bound = 1.0 / math.sqrt(in_features)
        self.register_buffer("feedback", torch.empty(out_features, in_features).uniform_(-bound, bound))

    @classmethod
    def replacing(cls, linear: nn.Linear) -> "FeedbackAlignmentLinear":
        """Same forward weights as `linear`, plus a fresh feedback matrix."""
        aligned = cls(linear.in_features, linear.out_features, linear.bias is not None)
        with torch.no_grad():
            aligned.weight.copy_(linear.weight)
            if linear.bias is not None:
                aligned.bias.copy_(linear.bias)
        return aligned.to(linear.weight.device)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return _FeedbackAlignedLinear.apply(inputs, self.weight, self.bias, self.feedback)


class OutputErrorInterface(Interface):
    """Shared by DFA and Kickback: no gradient crosses from the receiver.

    `send` hands the receiver a detached activation and keeps the sender's graph
    until the network's output error is broadcast; `message_from` turns that
    error into the sender's backward message.
    """

    wants_output_error = True

    def __init__(self):
        super().__init__()
        self._activation = None

    def send(self, activation, context=None, expects_target=True):
        self._activation = activation if activation.requires_grad else None
        return ActivationMessage(activation.detach(), context)

    def message_from(self, message: OutputErrorMessage, receiver_input, receiver_output) -> torch.Tensor:
        raise NotImplementedError

    def receive_output_error(self, message: OutputErrorMessage, receiver_input=None, receiver_output=None) -> None:
        if self._activation is None:
            return
        gradient = self.message_from(message, receiver_input, receiver_output).view_as(self._activation)
        if self.probe is not None:
            self.probe["synthetic"] = gradient.detach().clone()
        self._activation.backward(gradient)
        self._activation = None


class DirectFeedbackAlignment(OutputErrorInterface):
    """The sender's activation gets e R: the output error through a fixed random (classes x units) matrix."""

    def __init__(self, activation_shape: tuple[int, ...], num_classes: int):
        super().__init__()
        units = math.prod(activation_shape)
        bound = 1.0 / math.sqrt(num_classes)
        self.register_buffer("feedback", torch.empty(num_classes, units).uniform_(-bound, bound))

    def message_from(self, message, receiver_input, receiver_output):
        return message.error @ self.feedback


class Kickback(OutputErrorInterface):
    """The sender's activation gets one layer of backprop from a broadcast scalar error.

    Kickback is defined for a scalar output. For a softmax classifier we take the
    logit of the true class as that output, so the scalar error of example n is
    e_n = dL/dz_{y_n} = (p_{y_n} - 1) / batch. The receiver's error is replaced by
    e_n on every unit (a hidden receiver) or on the true class's logit only (the
    classifier), then backpropagated through the receiver alone: its activation
    derivatives gate the message, as Kickback's active-unit sums do.
    """

    reads_receiver_graph = True

    def __init__(self, receiver_is_classifier: bool):
        super().__init__()
        self.receiver_is_classifier = receiver_is_classifier

    def message_from(self, message, receiver_input, receiver_output):
        scalar_error = message.error.gather(1, message.labels[:, None])  # (batch, 1)
        if self.receiver_is_classifier:
            receiver_error = scalar_error * F.one_hot(message.labels, message.error.shape[1]).to(scalar_error.dtype)
        else:
            receiver_error = scalar_error.expand(-1, receiver_output[0].numel()).reshape_as(receiver_output)
        # retain_graph: the receiver's graph still serves its own update (and Kickback one layer up).
        (gradient,) = torch.autograd.grad(receiver_output, receiver_input, receiver_error, retain_graph=True)
        return gradient
