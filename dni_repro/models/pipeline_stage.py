"""One worker's part of a `DecoupledStack`: layers [first, last), for decoupled execution.

A stage keeps the interfaces between its own layers and, unless it holds the
classifier, the interface on its top boundary, which belongs with its sender
(its SG model reads the stage's output). One training step of a stage does what
`DecoupledStack.train_step` does for those layers: with a DNI on top, the stage's
output gets its synthetic gradient at once, so the stage can update without
waiting; the gradient that reaches the stage's input is the bootstrapped target
of the previous stage's DNI. With Bprop on top the stage's output keeps its
graph until the next stage's gradient arrives (pipelined backprop). The stage
knows nothing of processes: the caller moves the messages.
"""
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
import torch.nn.functional as F

from dni_repro.dni import ActivationMessage, Interface, one_hot
from dni_repro.models.feedforward import DecoupledStack, deliver_targets


@dataclass
class StageStep:
    message: Optional[ActivationMessage] = None  # for the next stage (None on the last stage)
    loss: Optional[torch.Tensor] = None  # the classification loss (last stage only)
    sg_losses: tuple = ()  # the regressions of the DNIs between this stage's layers, bottom first
    inputs: Optional[torch.Tensor] = None  # the stage's input, whose .grad is the previous stage's target


class PipelineStage(nn.Module):
    def __init__(self, stack: DecoupledStack, first: int, last: int):
        super().__init__()
        count = len(stack.layers)
        if not 0 <= first < last <= count:
            raise ValueError(f"a stage needs 0 <= first < last <= {count}, got [{first}, {last})")
        self.first, self.last = first, last
        self.is_last = last == count
        self.layers = nn.ModuleList(list(stack.layers)[first:last])
        # The interface after each of this stage's layers, the classifier excepted.
        self.interfaces = nn.ModuleList(list(stack.interfaces)[first:min(last, count - 1)])
        self.num_classes = stack.num_classes
        # Only this stage's own interfaces read the label (cDNI); the one below its input lives upstream.
        self.needs_context = any(interface.conditioned for interface in self.interfaces)

    @property
    def top_interface(self) -> Optional[Interface]:
        return None if self.is_last else self.interfaces[-1]

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Plain connected forward pass (evaluation)."""
        x = inputs
        for layer in self.layers:
            x = layer(x)
        return x

    def train_forward(
        self, inputs: torch.Tensor, labels: torch.Tensor, input_wants_target: bool,
        keep_top_prediction: bool = True, loss_scale: float = 1.0,
    ) -> StageStep:
        """Forward (and every backward pass that can run now) for one batch or micro-batch.

        Leaves gradients in `.grad`. `input_wants_target`: the stage's input came
        from an interface that wants its gradient back. `keep_top_prediction=False`
        keeps no graph for the top DNI's regression (the caller regresses later
        with `DNI.regress`). The last stage's loss is the batch-mean cross-entropy
        times `loss_scale` (a micro-batch's share of its batch).
        """
        context = one_hot(labels, self.num_classes) if self.needs_context else None
        if input_wants_target:
            inputs.requires_grad_()
        awaiting: list[tuple[Interface, torch.Tensor]] = []
        sg_losses: list[torch.Tensor] = []
        x = inputs
        for index, layer in enumerate(self.layers):
            activation = layer(x)
            if self.is_last and index == len(self.layers) - 1:
                loss = F.cross_entropy(activation, labels) * loss_scale
                loss.backward()
                sg_losses += deliver_targets(awaiting, bootstrapped=False)
                return StageStep(loss=loss.detach(), sg_losses=tuple(sg_losses), inputs=inputs)
            interface = self.interfaces[index]
            is_top = index == len(self.layers) - 1
            message = interface.send(activation, context, expects_target=not is_top or keep_top_prediction)
            if awaiting and interface.wants_target:  # that send backpropagated into the receiver below
                sg_losses += deliver_targets(awaiting, bootstrapped=True)
                awaiting = []
            if is_top:
                return StageStep(message=message, sg_losses=tuple(sg_losses), inputs=inputs)
            x = message.activation
            if interface.wants_target:
                x.requires_grad_()
                awaiting.append((interface, x))
        raise AssertionError("unreachable: a stage has at least one layer")

