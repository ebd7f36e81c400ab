"""Complete unlock (section 3.1, Fig. 5 right, Fig. 6, appendix A.1).

Every layer above the first also gets a synthetic-input model that predicts the
layer's input from the data. A layer can then run forward and backward on its
own: it reads its synthetic input, emits its output, receives a synthetic
gradient for it, and updates, without waiting for any other layer. Both models
belong to the receiving layer and are regressed to what its neighbours produce:

- the input model of layer i+1 regresses to layer i's real output h_i, whenever
  layer i ran this step;
- the SG model on boundary i regresses to the gradient that layer i+1
  backpropagated to its (synthetic) input, whenever layer i+1 ran. It is fitted
  at that synthetic input, the point where the target was measured, and consumed
  at h_i by layer i; the two agree as the input model converges.

With probability 1 - p_update a layer is busy: no forward, no backward, no update.
At test time the layers are simply chained (`forward`), synthetic inputs unused.
"""
from typing import Optional

import torch
from torch import nn
import torch.nn.functional as F

from dni_repro.dni import SyntheticInputModel, one_hot
from dni_repro.models.feedforward import DecoupledStack


class UnlockedStack(DecoupledStack):
    def __init__(
        self,
        layers: list[nn.Module],
        interfaces: list[nn.Module],
        num_classes: int,
        input_shape: tuple[int, ...],
        hidden_shapes: list[tuple[int, ...]],
        input_hidden_layers: int,
        input_hidden_width: int,
    ):
        super().__init__(layers, interfaces, num_classes)
        input_dim = 1
        for size in input_shape:
            input_dim *= size
        # input_models[i] predicts the input of layer i + 1, i.e. the output of layer i.
        self.input_models = nn.ModuleList(
            SyntheticInputModel(input_dim, shape, input_hidden_layers, input_hidden_width)
            for shape in hidden_shapes
        )

    def train_step(
        self, inputs: torch.Tensor, labels: torch.Tensor, update_mask: Optional[list[bool]] = None
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Every layer that runs this step trains on its own.

        Returns (classification loss, or None when the classifier was busy; summed
        SG and input-model losses, or None when nothing was regressed).
        """
        context = one_hot(labels, self.num_classes) if self.needs_context else None
        runs = update_mask if update_mask is not None else [True] * len(self.layers)
        # Synthetic input for layer i: needed if layer i runs (to read) or layer i - 1 runs (to regress).
        synthetic_inputs = [None] + [
            model(inputs) if runs[index] or runs[index - 1] else None
            for index, model in enumerate(self.input_models, start=1)
        ]
        model_losses: list[torch.Tensor] = []
        loss: Optional[torch.Tensor] = None
        for index, layer in enumerate(self.layers):
            if not runs[index]:
                continue
            if index == 0:
                x = inputs
            else:
                x = synthetic_inputs[index].detach().requires_grad_()
            output = layer(x)
            if index < len(self.interfaces):
                dni = self.interfaces[index]
                output.backward(dni.synthetic_gradient(output, context).detach())
                receiver_input = synthetic_inputs[index + 1]
                if receiver_input is not None:
                    model_losses.append(F.mse_loss(receiver_input, output.detach()))
            else:
                loss = F.cross_entropy(output, labels)
                loss.backward()
            if index > 0:
                # The gradient this layer sent down, at the synthetic input it read.
                dni_below = self.interfaces[index - 1]
                prediction = dni_below.synthetic_gradient(x, context)
                model_losses.append(dni_below.regression_loss(prediction, x.grad))
        classification_loss = loss.detach() if loss is not None else None
        if not model_losses:
            return classification_loss, None
        model_loss = torch.stack(model_losses).sum()
        model_loss.backward()
        return classification_loss, model_loss.detach()
