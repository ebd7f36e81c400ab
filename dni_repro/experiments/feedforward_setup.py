"""The feed-forward network of a run, built from its config: layers, then an interface on each chosen boundary.

Models take plain arguments; this module is where the config's choices become them.
"""
import torch
from torch import nn

from dni_repro.data import load_dataset
from dni_repro.data.tensors import Dataset, hold_out_validation
from dni_repro.errors import ConfigError

from dni_repro.dni import (
    DNI,
    BackpropInterface,
    CutInterface,
    DirectFeedbackAlignment,
    FeedbackAlignmentLinear,
    Interface,
    Kickback,
    StaleGradientInterface,
    build_synthetic_gradient_model,
)
from dni_repro.models.complete_unlock import UnlockedStack
from dni_repro.models.feedforward import DecoupledStack, cnn_layers, fcn_layers
from dni_repro.names import InterfaceName, ModelName


def build_interface(
    interface_cfg, activation_shape: tuple[int, ...], num_classes: int, batch_size: int
) -> Interface:
    name = interface_cfg.name
    if name == InterfaceName.bprop:
        return BackpropInterface()
    if name == InterfaceName.no_bprop:
        return CutInterface()
    if name == InterfaceName.stale:
        return StaleGradientInterface(activation_shape, batch_size, interface_cfg.stale_decay)
    if name == InterfaceName.dfa:
        return DirectFeedbackAlignment(activation_shape, num_classes)
    sg = interface_cfg.sg
    conditioned = name == InterfaceName.cdni
    sg_model = build_synthetic_gradient_model(
        activation_shape,
        hidden_layers=sg.hidden_layers,
        hidden_width=sg.hidden_width,
        kernel_size=sg.kernel_size,
        num_classes=num_classes if conditioned else 0,
    )
    return DNI(sg_model, sg_loss_weight=interface_cfg.sg_loss_weight, conditioned=conditioned)


def output_shapes(layers: list[nn.Module], input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    x = torch.zeros(2, *input_shape)
    shapes = []
    with torch.no_grad():
        for layer in layers:
            x = layer.eval()(x)
            shapes.append(tuple(x.shape[1:]))
            layer.train()
    return shapes


def _align_first_linear(layer: nn.Sequential) -> None:
    """Swap the layer's first linear map for a Feedback Alignment one with the same weights."""
    for index, module in enumerate(layer):
        if isinstance(module, nn.Linear):
            layer[index] = FeedbackAlignmentLinear.replacing(module)
            return
    raise ValueError(f"interface=fa needs a linear receiver, got {layer}")


def build_network(
    model_cfg, interface_cfg, input_shape: tuple[int, ...], num_classes: int, batch_size: int
) -> DecoupledStack:
    """The model of `model_cfg` with `interface_cfg`'s interface on the chosen boundaries, Bprop elsewhere."""
    if model_cfg.name == ModelName.fcn:
        layers = fcn_layers(input_shape, num_classes, model_cfg.depth, model_cfg.width, model_cfg.activation.value)
    else:
        layers = cnn_layers(input_shape, num_classes, model_cfg.depth, model_cfg.width)
    shapes = output_shapes(layers[:-1], input_shape)
    positions = interface_cfg.positions
    chosen = [positions is None or boundary in positions for boundary in range(1, len(layers))]
    if interface_cfg.name == InterfaceName.fa:
        # FA changes how the receiver sends gradients back, so it lives in the receiver's linear layer;
        # the boundary itself stays connected.
        for boundary, aligned in enumerate(chosen, start=1):
            if aligned:
                _align_first_linear(layers[boundary])
        interfaces = [BackpropInterface() for _ in shapes]
    elif interface_cfg.name == InterfaceName.kickback:
        interfaces = [
            Kickback(receiver_is_classifier=boundary == len(shapes)) if kicked else BackpropInterface()
            for boundary, kicked in enumerate(chosen, start=1)
        ]
    else:
        interfaces = [
            build_interface(interface_cfg, shape, num_classes, batch_size) if decoupled else BackpropInterface()
            for shape, decoupled in zip(shapes, chosen)
        ]
    if interface_cfg.synthetic_inputs:
        inputs = interface_cfg.input_model
        return UnlockedStack(layers, interfaces, num_classes, input_shape, shapes, inputs.hidden_layers, inputs.hidden_width)
    return DecoupledStack(layers, interfaces, num_classes)


def load_training_data(cfg, device: torch.device) -> Dataset:
    """The run's dataset on `device`, with its validation split held out, checked against the batch size."""
    data = hold_out_validation(load_dataset(cfg.dataset, cfg.paths.data_dir), cfg.dataset.val_size,
                               cfg.dataset.val_seed).to(device)
    if cfg.trainer.batch_size > len(data.train):
        raise ConfigError(
            f"trainer.batch_size={cfg.trainer.batch_size} exceeds the {len(data.train)} training examples of {data.name}"
        )
    return data
