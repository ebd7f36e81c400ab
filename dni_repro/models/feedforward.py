"""Feed-forward networks as stacks of layers joined by interfaces (section 3.1).

A `DecoupledStack` holds hidden layers, one interface after each, and a linear
classifier. Its `train_step` runs the forward pass layer by layer; each interface
decides what crosses back (everything, nothing, a synthetic or a stale
gradient), and each DNI gets its regression target as soon as the layer above
has produced it. With an update mask (sparse updates, Fig. 5 left) some layers
run forward only in a step.
"""
from typing import Optional

import torch
from torch import nn
import torch.nn.functional as F

from dni_repro.dni import GradientMessage, Interface, OutputErrorMessage, one_hot


ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


def fcn_layers(
    input_shape: tuple[int, ...], num_classes: int, depth: int, width: int, activation: str = "relu"
) -> list[nn.Module]:
    """depth-1 hidden layers of (linear, BN, activation) and a linear classifier."""
    nonlinearity = ACTIVATIONS[activation]
    layers: list[nn.Module] = []
    features = 1
    for size in input_shape:
        features *= size
    for index in range(depth - 1):
        flatten = [nn.Flatten()] if index == 0 else []
        layers.append(nn.Sequential(*flatten, nn.Linear(features, width), nn.BatchNorm1d(width), nonlinearity()))
        features = width
    flatten = [nn.Flatten()] if depth == 1 else []
    layers.append(nn.Sequential(*flatten, nn.Linear(features, num_classes)))
    return layers


def cnn_layers(input_shape: tuple[int, ...], num_classes: int, depth: int, channels: int) -> list[nn.Module]:
    """depth-1 conv layers (5x5, same padding, BN, ReLU, 3x3 pool) and a linear classifier.

    The first layer max-pools and the rest average-pool (A.1); the pools use
    stride 2 and padding 1, which the paper leaves open.
    """
    layers: list[nn.Module] = []
    channels_in, height, width = input_shape
    for index in range(depth - 1):
        pool = nn.MaxPool2d(3, stride=2, padding=1) if index == 0 else nn.AvgPool2d(3, stride=2, padding=1)
        layers.append(
            nn.Sequential(nn.Conv2d(channels_in, channels, 5, padding=2), nn.BatchNorm2d(channels), nn.ReLU(), pool)
        )
        channels_in, height, width = channels, (height + 1) // 2, (width + 1) // 2
    layers.append(nn.Sequential(nn.Flatten(), nn.Linear(channels_in * height * width, num_classes)))
    return layers


class DecoupledStack(nn.Module):
    def __init__(self, layers: list[nn.Module], interfaces: list[Interface], num_classes: int):
        super().__init__()
        if len(interfaces) != len(layers) - 1:
            raise ValueError(f"{len(layers)} layers need {len(layers) - 1} interfaces, got {len(interfaces)}")
        self.layers = nn.ModuleList(layers)
        self.interfaces = nn.ModuleList(interfaces)
        self.num_classes = num_classes
        # Only cDNI needs the label on the sender side; skip building it otherwise.
        self.needs_context = any(interface.conditioned for interface in interfaces)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Plain connected forward pass (evaluation): interfaces play no part."""
        x = inputs
        for layer in self.layers:
            x = layer(x)
        return x

    def train_step(
        self, inputs: torch.Tensor, labels: torch.Tensor, update_mask: Optional[list[bool]] = None
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Forward, every backward pass and every SG regression for one batch.

        Accumulates gradients into `.grad`; the caller zeroes them (to None) before
        and steps the optimizer after. `update_mask[i] = False` makes layer i run
        forward only: it gets no gradient, so the optimizer leaves it and its state
        alone, and the SG model below it gets no target this step. Returns
        (classification loss, summed SG loss or None).
        """
        context = one_hot(labels, self.num_classes) if self.needs_context else None
        updates = update_mask if update_mask is not None else [True] * len(self.layers)
        awaiting_target: list[tuple[Interface, torch.Tensor]] = []
        # DFA / Kickback interfaces, each with its receiver's input; the receivers' outputs follow.
        awaiting_error: list[tuple[Interface, torch.Tensor]] = []
        receiver_outputs: list[torch.Tensor] = []
        sg_losses: list[torch.Tensor] = []
        x = inputs
        # zip stops at the last interface, i.e. below the classifier (slicing a ModuleList would build a new one).
        for index, (layer, interface) in enumerate(zip(self.layers, self.interfaces)):
            with torch.set_grad_enabled(updates[index]):
                activation = layer(x)
            if len(receiver_outputs) < len(awaiting_error):
                receiver_outputs.append(activation)
            receiver_updates = updates[index + 1]
            message = interface.send(activation, context, expects_target=receiver_updates)
            # That send backpropagated a synthetic gradient down to the previous
            # DNI's receiver input: its bootstrapped target is ready.
            if awaiting_target and interface.wants_target:
                sg_losses += deliver_targets(awaiting_target, bootstrapped=True)
                awaiting_target = []
            x = message.activation
            if interface.wants_target and receiver_updates:
                x.requires_grad_()
                awaiting_target.append((interface, x))
            if interface.wants_output_error:
                if interface.reads_receiver_graph:
                    x.requires_grad_()
                awaiting_error.append((interface, x))
        with torch.set_grad_enabled(updates[-1]):
            logits = self.layers[-1](x)
            loss = F.cross_entropy(logits, labels)
        if len(receiver_outputs) < len(awaiting_error):
            receiver_outputs.append(logits)
        if awaiting_error:
            self._broadcast_output_error(awaiting_error, receiver_outputs, logits.detach(), labels)
        if updates[-1]:
            loss.backward()
        sg_losses += deliver_targets(awaiting_target, bootstrapped=False)
        sg_loss = torch.stack(sg_losses).sum() if sg_losses else None
        return loss.detach(), sg_loss

    @staticmethod
    def _broadcast_output_error(
        awaiting: list[tuple[Interface, torch.Tensor]],
        receiver_outputs: list[torch.Tensor],
        logits: torch.Tensor,
        labels: torch.Tensor,
    ) -> None:
        """Give every DFA / Kickback interface dL/dlogits of the mean cross-entropy, bottom layer first.

        Bottom first, and before the loss's own backward, because Kickback reads
        its receiver's graph, which the interface above (or the loss) then frees.
        """
        error = (logits.softmax(dim=1) - F.one_hot(labels, logits.shape[1]).to(logits.dtype)) / len(labels)
        message = OutputErrorMessage(error, labels)
        for (interface, receiver_input), receiver_output in zip(awaiting, receiver_outputs):
            interface.receive_output_error(message, receiver_input, receiver_output)


def deliver_targets(awaiting: list[tuple[Interface, torch.Tensor]], bootstrapped: bool) -> list[torch.Tensor]:
    """Hand each waiting interface the gradient that reached its receiver's input; returns the SG losses."""
    losses = []
    for interface, receiver_input in awaiting:
        # A cut further up can leave a receiver without any gradient: nothing to regress to.
        if receiver_input.grad is not None:
            sg_loss = interface.receive(GradientMessage(receiver_input.grad, bootstrapped))
            if sg_loss is not None:  # a stale-gradient interface learns nothing to regress
                losses.append(sg_loss)
    return losses
