"""The DNI core against the paper's definitions, on small FCN and CNN stacks."""
import copy

import pytest
import torch
from torch import nn
import torch.nn.functional as F

from dni_repro.dni import DNI, ConvSyntheticGradient, GradientMessage, MLPSyntheticGradient
from dni_repro.experiments.feedforward_setup import build_network
from dni_repro.models.feedforward import DecoupledStack
from tests.conftest import compose_config

BATCH = 16


def make_net(interface: str, model: str = "fcn", depth: int = 4, **sg):
    overrides = [f"interface={interface}", f"model={model}", f"model.depth={depth}", "model.width=12", "model.sg_width=20"]
    overrides += [f"interface.sg.{key}={value}" for key, value in sg.items()]
    cfg = compose_config(overrides)
    return build_network(cfg.model, cfg.interface, (1, 28, 28), 10, batch_size=BATCH)


def batch(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(BATCH, 1, 28, 28, generator=generator), torch.randint(0, 10, (BATCH,), generator=generator)


def layer_parameters(net: DecoupledStack):
    return [p for layer in net.layers for p in layer.parameters()]


def adam_step(net: DecoupledStack, inputs, labels):
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    optimizer.zero_grad()
    net.train_step(inputs, labels)
    optimizer.step()


def true_hidden_gradients(net: DecoupledStack, inputs, labels) -> list[torch.Tensor]:
    """dL/dh at every hidden layer's output, by plain backprop on a copy."""
    net = copy.deepcopy(net)
    outputs, x = [], inputs
    for layer in net.layers[:-1]:
        x = layer(x)
        x.retain_grad()
        outputs.append(x)
    F.cross_entropy(net.layers[-1](x), labels).backward()
    return [h.grad.detach().clone() for h in outputs]


class OracleSyntheticGradient(nn.Module):
    """Returns a fixed, known gradient; its anchor only gives the SG loss a graph."""

    def __init__(self, gradient: torch.Tensor):
        super().__init__()
        self.gradient = gradient
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, activation, context=None):
        return self.gradient + 0.0 * self.anchor


@pytest.mark.parametrize("model", ["fcn", "cnn"])
def test_oracle_synthetic_gradient_step_equals_backprop_step(model):
    torch.manual_seed(0)
    bprop_net = make_net("bprop", model, depth=4)
    dni_net = make_net("dni", model, depth=4)
    dni_net.layers.load_state_dict(bprop_net.layers.state_dict())
    inputs, labels = batch()
    for interface, gradient in zip(dni_net.interfaces, true_hidden_gradients(bprop_net, inputs, labels)):
        interface.sg_model = OracleSyntheticGradient(gradient)

    for net in (bprop_net, dni_net):
        optimizer = torch.optim.Adam(layer_parameters(net), lr=1e-2)
        optimizer.zero_grad()
        net.train_step(inputs, labels)
        optimizer.step()

    for after_bprop, after_dni in zip(layer_parameters(bprop_net), layer_parameters(dni_net)):
        torch.testing.assert_close(after_dni, after_bprop, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("interface", ["dni", "cdni"])
@pytest.mark.parametrize("model", ["fcn", "cnn"])
def test_zero_initialised_sg_first_step_matches_no_bprop(interface, model):
    torch.manual_seed(1)
    cut_net = make_net("no_bprop", model)
    dni_net = make_net(interface, model)
    dni_net.layers.load_state_dict(cut_net.layers.state_dict())
    before = [p.detach().clone() for p in layer_parameters(cut_net)]
    inputs, labels = batch(1)
    adam_step(cut_net, inputs, labels)
    adam_step(dni_net, inputs, labels)
    hidden_count = sum(1 for layer in cut_net.layers[:-1] for _ in layer.parameters())
    for index, (p_cut, p_dni) in enumerate(zip(layer_parameters(cut_net), layer_parameters(dni_net))):
        torch.testing.assert_close(p_dni, p_cut)
        if index < hidden_count:  # below the classifier nothing has moved yet
            torch.testing.assert_close(p_dni, before[index])


def randomise_sg_outputs(net: DecoupledStack, seed: int = 3):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for interface in net.interfaces:
            for parameter in interface.sg_model.output.parameters():
                parameter.copy_(0.05 * torch.randn(parameter.shape, generator=generator))


def record_exchanges(net: DecoupledStack):
    """Wrap send/receive of every interface to keep predictions, inputs and targets."""
    log = {"sent": [], "predictions": [], "targets": []}
    for interface in net.interfaces:
        original_send, original_receive = interface.send, interface.receive

        def send(activation, context=None, expects_target=True, _send=original_send, _interface=interface):
            log["sent"].append(activation.detach().clone())
            message = _send(activation, context, expects_target)
            log["predictions"].append(_interface._prediction.detach().clone())
            return message

        def receive(message, _receive=original_receive):
            log["targets"].append(message)
            return _receive(message)

        interface.send, interface.receive = send, receive
    return log


@pytest.mark.parametrize("model", ["fcn", "cnn"])
def test_targets_are_bootstrapped_below_and_true_at_the_top(model):
    torch.manual_seed(2)
    net = make_net("dni", model, depth=4)
    randomise_sg_outputs(net)
    inputs, labels = batch(2)
    reference = copy.deepcopy(net)
    log = record_exchanges(net)
    net.train_step(inputs, labels)

    hidden = len(net.interfaces)
    assert len(log["targets"]) == hidden
    for i in range(hidden - 1):
        # Interface i's target: the synthetic gradient at layer i+1's output,
        # backpropagated through layer i+1 (evaluated on a pre-step copy).
        receiver_input = log["sent"][i].clone().requires_grad_()
        output = reference.layers[i + 1](receiver_input)
        (expected,) = torch.autograd.grad(output, receiver_input, log["predictions"][i + 1])
        assert log["targets"][i].bootstrapped
        torch.testing.assert_close(log["targets"][i].gradient, expected)
    top_input = log["sent"][-1].clone().requires_grad_()
    loss = F.cross_entropy(reference.layers[-1](top_input), labels)
    (true_gradient,) = torch.autograd.grad(loss, top_input)
    assert not log["targets"][-1].bootstrapped
    torch.testing.assert_close(log["targets"][-1].gradient, true_gradient)


def test_mlp_cdni_input_carries_one_hot_label():
    sg = MLPSyntheticGradient(activation_dim=6, hidden_layers=0, hidden_width=4, num_classes=10)
    seen = {}
    sg.output.register_forward_pre_hook(lambda module, args: seen.setdefault("input", args[0]))
    labels = torch.tensor([3, 0, 9])
    sg(torch.randn(3, 6), F.one_hot(labels, 10).float())
    assert seen["input"].shape == (3, 16)
    torch.testing.assert_close(seen["input"][:, 6:], F.one_hot(labels, 10).float())


def test_conv_cdni_input_carries_label_channel_masks():
    sg = ConvSyntheticGradient(channels=4, hidden_layers=1, hidden_channels=5, num_classes=10)
    seen = {}
    sg.hidden[0].register_forward_pre_hook(lambda module, args: seen.setdefault("input", args[0]))
    labels = torch.tensor([7, 2])
    sg(torch.randn(2, 4, 6, 6), F.one_hot(labels, 10).float())
    masks = seen["input"][:, 4:]
    assert masks.shape == (2, 10, 6, 6)
    for row, label in enumerate(labels):
        assert torch.all(masks[row, label] == 1)
        assert masks[row].sum() == 36  # every other channel is all zeros


def test_cdni_network_feeds_labels_to_every_sg_model():
    net = make_net("cdni", "fcn", depth=3)
    inputs, labels = batch(4)
    contexts = []
    for interface in net.interfaces:
        interface.sg_model.register_forward_pre_hook(lambda module, args: contexts.append(args[1]))
    net.train_step(inputs, labels)
    assert len(contexts) == 2
    for context in contexts:
        torch.testing.assert_close(context, F.one_hot(labels, 10).float())


@pytest.mark.parametrize(
    "sg_model",
    [MLPSyntheticGradient(8, 2, 16, num_classes=10), ConvSyntheticGradient(3, 2, 4, num_classes=10)],
    ids=["mlp", "conv"],
)
def test_sg_output_layer_starts_at_zero_and_is_last(sg_model):
    assert torch.all(sg_model.output.weight == 0) and torch.all(sg_model.output.bias == 0)
    last_module = list(sg_model.modules())[-1]
    assert last_module is sg_model.output  # no BN or ReLU after the regression layer


def test_sg_regression_never_reaches_the_sender():
    sender = nn.Linear(5, 6)
    dni = DNI(MLPSyntheticGradient(6, 1, 8))
    randomise = torch.Generator().manual_seed(0)
    with torch.no_grad():
        dni.sg_model.output.weight.copy_(torch.randn(6, 8, generator=randomise))
    message = dni.send(sender(torch.randn(4, 5)))
    assert not message.activation.requires_grad
    sender_gradient = sender.weight.grad.clone()
    assert sender_gradient.abs().sum() > 0  # the synthetic gradient arrived at once
    sg_loss = dni.receive(GradientMessage(torch.randn(4, 6), bootstrapped=False))
    assert sg_loss > 0
    torch.testing.assert_close(sender.weight.grad, sender_gradient)
    assert dni.sg_model.output.weight.grad is not None


def test_receive_without_send_is_an_error():
    dni = DNI(MLPSyntheticGradient(3, 0, 3))
    with pytest.raises(RuntimeError, match="before send"):
        dni.receive(GradientMessage(torch.zeros(1, 3), bootstrapped=False))
