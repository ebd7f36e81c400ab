"""FA, DFA and Kickback interfaces (Czarnecki et al. 2017, section 5) against their definitions."""
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from dni_repro.dni import DirectFeedbackAlignment, FeedbackAlignmentLinear, Kickback
from dni_repro.errors import ConfigError
from dni_repro.config import validate
from dni_repro.models.feedforward import DecoupledStack
from tests.conftest import compose_config, run_in_process
from tests.test_dni_core import BATCH, batch, make_net


def gradients(net: DecoupledStack) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in net.layers.named_parameters() if p.grad is not None}


def one_step_gradients(net: DecoupledStack, inputs, labels) -> dict[str, torch.Tensor]:
    net.zero_grad(set_to_none=True)
    net.train_step(inputs, labels)
    return gradients(net)


def aligned_layers(net: DecoupledStack) -> list[FeedbackAlignmentLinear]:
    return [module for module in net.layers.modules() if isinstance(module, FeedbackAlignmentLinear)]


def bprop_and_fa_twins() -> tuple[DecoupledStack, DecoupledStack]:
    """Two networks with the same forward weights, one with FA receivers."""
    torch.manual_seed(0)
    bprop = make_net("bprop")
    torch.manual_seed(0)
    return bprop, make_net("fa")


def test_fa_with_the_true_weights_as_feedback_is_backprop():
    inputs, labels = batch()
    bprop, fa = bprop_and_fa_twins()
    # Every receiver (all layers but the first) sends its gradient through feedback instead of its weights.
    assert len(aligned_layers(fa)) == len(fa.layers) - 1
    for layer in aligned_layers(fa):
        layer.feedback.copy_(layer.weight.detach())
    expected, got = one_step_gradients(bprop, inputs, labels), one_step_gradients(fa, inputs, labels)
    assert expected.keys() == got.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=1e-7, msg=name)


def test_fa_with_random_feedback_differs_below_the_classifier_only():
    inputs, labels = batch()
    bprop, fa = bprop_and_fa_twins()
    expected, got = one_step_gradients(bprop, inputs, labels), one_step_gradients(fa, inputs, labels)
    top = f"{len(fa.layers) - 1}.0.weight"  # the classifier learns from the true loss gradient
    torch.testing.assert_close(got[top], expected[top])
    assert not torch.allclose(got["0.1.weight"], expected["0.1.weight"])


def test_feedback_matrices_are_fixed_buffers_that_training_never_changes():
    inputs, labels = batch()
    for interface, kind in (("fa", FeedbackAlignmentLinear), ("dfa", DirectFeedbackAlignment)):
        torch.manual_seed(0)
        net = make_net(interface)
        holders = [module for module in net.modules() if isinstance(module, kind)]
        before = [holder.feedback.clone() for holder in holders]
        parameters = {id(p) for p in net.parameters()}
        assert holders and all(id(holder.feedback) not in parameters for holder in holders)
        # Saved with the model, so a resumed run keeps its matrices.
        assert sum(key.endswith("feedback") for key in net.state_dict()) == len(holders)
        optimizer = torch.optim.Adam(net.parameters(), lr=0.1)
        for _ in range(3):
            optimizer.zero_grad()
            net.train_step(inputs, labels)
            optimizer.step()
        for holder, saved in zip(holders, before):
            assert torch.equal(holder.feedback, saved)


def output_error(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """dL/dlogits of the mean cross-entropy, by autograd."""
    logits = logits.detach().requires_grad_()
    F.cross_entropy(logits, labels).backward()
    return logits.grad


def test_dfa_hidden_layers_learn_from_the_output_error_through_their_fixed_matrices_only():
    inputs, labels = batch()
    torch.manual_seed(0)
    net = make_net("dfa")
    got = one_step_gradients(net, inputs, labels)
    # By hand: layer i's parameters get d<h_i, e R_i>/dtheta_i, with h_i from the true forward pass.
    net.zero_grad(set_to_none=True)
    activations, x = [], inputs
    for layer in net.layers:
        x = layer(x)
        activations.append(x)
    error = output_error(activations[-1], labels)
    for index, interface in enumerate(net.interfaces):
        layer_params = list(net.layers[index].parameters())
        activation = net.layers[index](activations[index - 1].detach() if index else inputs)
        expected = torch.autograd.grad((activation * (error @ interface.feedback)).sum(), layer_params)
        for name_param, grad in zip(net.layers[index].named_parameters(), expected):
            torch.testing.assert_close(got[f"{index}.{name_param[0]}"], grad, rtol=1e-4, atol=1e-6)
    # The classifier's own update is the true one: d(loss)/d(classifier) with its input fixed.
    classifier = list(net.layers[-1].parameters())
    expected = torch.autograd.grad(F.cross_entropy(net.layers[-1](activations[-2].detach()), labels), classifier)
    torch.testing.assert_close(got[f"{len(net.layers) - 1}.0.weight"], expected[0])


def kickback_stack() -> DecoupledStack:
    torch.manual_seed(0)
    layers = [
        nn.Sequential(nn.Linear(4, 5), nn.ReLU()),
        nn.Sequential(nn.Linear(5, 6), nn.ReLU()),
        nn.Sequential(nn.Linear(6, 3)),
    ]
    return DecoupledStack(layers, [Kickback(receiver_is_classifier=False), Kickback(receiver_is_classifier=True)], 3)


def test_kickback_messages_by_hand():
    net = kickback_stack()
    inputs, labels = torch.randn(8, 4), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    for interface in net.interfaces:
        interface.probe = {}
    net.train_step(inputs, labels)
    h1 = net.layers[0](inputs)
    pre2 = net.layers[1][0](h1)
    logits = net.layers[2](F.relu(pre2))
    scalar = (logits.softmax(1) - F.one_hot(labels, 3).float()).gather(1, labels[:, None]) / len(labels)
    # Top: the true class's logit is the scalar output, so the message is e_n times that class's weight row.
    top = scalar * net.layers[2][0].weight[labels]
    # Below: e_n on every unit of the receiver, gated by its ReLU, through its weights.
    below = (scalar * (pre2 > 0).float()) @ net.layers[1][0].weight
    torch.testing.assert_close(net.interfaces[1].probe["synthetic"], top.detach())
    torch.testing.assert_close(net.interfaces[0].probe["synthetic"], below.detach())


def test_kickback_first_layer_update_uses_its_message():
    net = kickback_stack()
    inputs, labels = torch.randn(8, 4), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    net.interfaces[0].probe = {}
    net.train_step(inputs, labels)
    message = net.interfaces[0].probe["synthetic"]
    weight = net.layers[0][0].weight
    expected = torch.autograd.grad((net.layers[0](inputs) * message).sum(), weight)[0]
    torch.testing.assert_close(weight.grad, expected)


@pytest.mark.parametrize("interface", ["fa", "dfa", "kickback"])
def test_runs_train_and_log_from_the_command_line_config(interface, tmp_path):
    quality = [] if interface == "fa" else ["trainer.sg_quality_every=2"]
    summary = run_in_process([f"interface={interface}", "trainer.max_steps=4", *quality], tmp_path)
    assert summary["status"] == "completed"
    lines = (tmp_path / "metrics.jsonl").read_text()
    assert ("sg_quality/boundary1/true_cosine" in lines) == (interface != "fa")


@pytest.mark.parametrize("interface", ["fa", "dfa", "kickback"])
def test_feedback_interfaces_refuse_conv_models(interface):
    cfg = compose_config([f"interface={interface}", "model=cnn", "logger=none"])
    with pytest.raises(ConfigError, match="fully connected"):
        validate(cfg)
