"""Truncated BPTT and recurrent DNI (section 2.2, Fig. 4): gradients checked against independent computations."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dni_repro.names import InterfaceName
from dni_repro.models.recurrent import RecurrentNetwork
from dni_repro.experiments.language_model import bits_per_character
from dni_repro.models.lstm import LSTMCore

VOCAB, UNITS, BATCH = 7, 6, 3


def make_net(interface: str, seed: int = 0, **options) -> RecurrentNetwork:
    torch.manual_seed(seed)
    net = RecurrentNetwork(VOCAB, VOCAB, UNITS, InterfaceName(interface), **options).double()
    if net.synthetic_gradient is not None:  # a trained-looking SG model instead of the zero-initialised one
        nn.init.normal_(net.synthetic_gradient.output.weight, std=0.3)
        nn.init.normal_(net.synthetic_gradient.output.bias, std=0.3)
    return net


def sequence(steps: int, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    symbols = torch.randint(VOCAB, (steps, BATCH), generator=generator)
    targets = torch.randint(VOCAB, (steps, BATCH), generator=generator)
    return symbols, targets


def double_state(net, batch=BATCH):
    state = net.initial_state(batch, torch.device("cpu"))
    state.h, state.c = state.h.double(), state.c.double()
    return state


def chunk_loss(net, symbols, targets, h, c):
    """Summed cross-entropy of one unroll from (h, c), written independently of train_chunk."""
    outputs, h, c = net.core.unroll(symbols, h, c)
    logits = net.readout(outputs)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum"), h, c


def parameter_grads(net, names):
    return {n: p.grad.clone() for n, p in net.named_parameters() if n.split(".")[0] in names}


def test_lstm_without_peepholes_is_torch_lstm():
    torch.manual_seed(0)
    core = LSTMCore(VOCAB, UNITS, peepholes=False)
    reference = nn.LSTM(VOCAB, UNITS)
    with torch.no_grad():
        reference.weight_ih_l0.copy_(core.input_weight.t())
        reference.weight_hh_l0.copy_(core.recurrent.weight)
        reference.bias_ih_l0.copy_(core.recurrent.bias)
        reference.bias_hh_l0.zero_()
    symbols, _ = sequence(9)
    h, c = torch.randn(BATCH, UNITS), torch.randn(BATCH, UNITS)
    outputs, h_end, c_end = core.unroll(symbols, h, c)
    expected, (h_ref, c_ref) = reference(F.one_hot(symbols, VOCAB).float(), (h[None], c[None]))
    torch.testing.assert_close(outputs, expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close((h_end, c_end), (h_ref[0], c_ref[0]), atol=1e-6, rtol=1e-5)


def test_peepholes_change_the_gates():
    core = LSTMCore(VOCAB, UNITS, peepholes=True)
    symbols, _ = sequence(4)
    h, c = torch.zeros(BATCH, UNITS), torch.randn(BATCH, UNITS)
    before = core.unroll(symbols, h, c)[0]
    with torch.no_grad():
        core.peephole.fill_(0.5)
    assert not torch.allclose(before, core.unroll(symbols, h, c)[0])


def test_bptt_over_the_whole_sequence_is_full_backprop():
    net = make_net("bptt")
    symbols, targets = sequence(8)
    state = double_state(net)
    net.train_chunk(symbols, targets, None, state)
    got = parameter_grads(net, ("core", "readout"))
    net.zero_grad()
    loss, _, _ = chunk_loss(net, symbols, targets, state.h, state.c)
    (loss / BATCH).backward()
    for name, grad in parameter_grads(net, ("core", "readout")).items():
        torch.testing.assert_close(got[name], grad)


def test_bptt_chunks_carry_the_state_and_stop_the_gradient():
    net = make_net("bptt")
    symbols, targets = sequence(8)
    state = double_state(net)
    _, state = net.train_chunk(symbols[:4], targets[:4], None, state)
    net.zero_grad()
    net.train_chunk(symbols[4:], targets[4:], None, state)
    got = parameter_grads(net, ("core",))
    # Reference: forward the whole sequence, but cut the graph at step 4.
    net.zero_grad()
    start = double_state(net)
    _, h, c = chunk_loss(net, symbols[:4], targets[:4], start.h, start.c)
    loss, _, _ = chunk_loss(net, symbols[4:], targets[4:], h.detach(), c.detach())
    (loss / BATCH).backward()
    for name, grad in parameter_grads(net, ("core",)).items():
        torch.testing.assert_close(got[name], grad)


class OracleGradient(nn.Module):
    """Stands in for M: returns a fixed gradient at the chunk's end (and anything at its start)."""

    def __init__(self, gradient: torch.Tensor):
        super().__init__()
        self.gradient = gradient
        self.unused = nn.Parameter(torch.zeros((), dtype=gradient.dtype))  # gives the regression loss a leaf

    def forward(self, h):
        return self.gradient + self.unused * h.sum()


def test_dni_with_an_oracle_gradient_gives_full_bptt_gradients_for_the_chunk():
    steps = 4
    net = make_net("dni", sg_scale=1.0)
    symbols, targets = sequence(2 * steps)
    start = double_state(net)
    # The true future gradient at the boundary, by unrolling the next chunk on the side.
    _, h_mid, c_mid = chunk_loss(net, symbols[:steps], targets[:steps], start.h, start.c)
    h_mid, c_mid = h_mid.detach().requires_grad_(), c_mid.detach().requires_grad_()
    future_loss, _, _ = chunk_loss(net, symbols[steps:], targets[steps:], h_mid, c_mid)
    true_h, true_c = torch.autograd.grad(future_loss, (h_mid, c_mid))
    net.synthetic_gradient = OracleGradient(torch.cat([true_h, true_c], dim=1))
    net.zero_grad()
    net.train_chunk(symbols[:steps], targets[:steps], None, start)
    got = parameter_grads(net, ("core", "readout"))

    # Full BPTT minus what the second chunk's own cores contribute = the first chunk's share.
    net.zero_grad()
    total, _, _ = chunk_loss(net, symbols, targets, start.h, start.c)
    (total / BATCH).backward()
    full = parameter_grads(net, ("core", "readout"))
    net.zero_grad()
    second, _, _ = chunk_loss(net, symbols[steps:], targets[steps:], h_mid.detach(), c_mid.detach())
    (second / BATCH).backward()
    second_only = parameter_grads(net, ("core", "readout"))
    for name in got:
        torch.testing.assert_close(got[name], full[name] - second_only[name])


@pytest.mark.parametrize("interface", ["dni", "dni_aux"])
def test_sg_target_is_the_chunk_gradient_with_the_scaled_boundary_sg(interface):
    net = make_net(interface, sg_scale=0.1)
    symbols, targets = sequence(6)
    _, state = net.train_chunk(symbols[:3], targets[:3], None, double_state(net))
    result, _ = net.train_chunk(symbols[3:], targets[3:], None, state)
    h0, c0 = state.h.clone().requires_grad_(), state.c.clone().requires_grad_()
    loss, h_end, c_end = chunk_loss(net, symbols[3:], targets[3:], h0, c0)
    boundary = net.synthetic_gradient(h_end).detach()
    objective = loss + 0.1 * ((boundary[:, :UNITS] * h_end).sum() + (boundary[:, UNITS:] * c_end).sum())
    expected = torch.cat(torch.autograd.grad(objective, (h0, c0), retain_graph=True), dim=1)
    torch.testing.assert_close(result.sg_target, expected)
    # The 0.1 scale stays out of the target: M predicts the unscaled gradient.
    unscaled = torch.cat(torch.autograd.grad(loss + (boundary[:, :UNITS] * h_end).sum()
                                             + (boundary[:, UNITS:] * c_end).sum(), (h0, c0)), dim=1)
    assert not torch.allclose(result.sg_target, unscaled)


@pytest.mark.parametrize("into_core", [False, True])
def test_sg_regression_reaches_the_core_only_when_asked(into_core):
    net = make_net("dni", sg_loss_into_core=into_core)
    symbols, targets = sequence(6)
    _, state = net.train_chunk(symbols[:3], targets[:3], None, double_state(net))
    net.zero_grad()
    net.train_chunk(symbols[3:], targets[3:], None, state)
    got = parameter_grads(net, ("core",))
    # The core's gradient from the task loss and the injected SG alone.
    net.zero_grad()
    loss, h_end, c_end = chunk_loss(net, symbols[3:], targets[3:], state.h, state.c)
    boundary = 0.1 * net.synthetic_gradient(h_end).detach()
    ((loss + (boundary[:, :UNITS] * h_end).sum() + (boundary[:, UNITS:] * c_end).sum()) / BATCH).backward()
    task_only = parameter_grads(net, ("core",))
    same = all(torch.allclose(got[n], task_only[n]) for n in got)
    assert same != into_core


def test_aux_head_predicts_the_sg_t_steps_ahead_and_trains_the_core():
    net = make_net("dni_aux")
    symbols, targets = sequence(6)
    _, state = net.train_chunk(symbols[:3], targets[:3], None, double_state(net))
    net.zero_grad()
    result, _ = net.train_chunk(symbols[3:], targets[3:], None, state)
    # Recompute the kept core (the previous chunk's last step) and M at this chunk's end.
    h_kept, _ = net.core.step(net.core.project_inputs(state.last_symbols), state.h_before, state.c_before)
    _, h_end, _ = chunk_loss(net, symbols[3:], targets[3:], state.h, state.c)
    expected = (net.future_sg_head(h_kept) - net.synthetic_gradient(h_end)).pow(2).sum() / BATCH
    torch.testing.assert_close(result.aux_loss, expected.detach())
    assert net.future_sg_head.weight.grad.abs().sum() > 0


def test_bptt_state_is_detached_and_memory_is_one_chunk():
    net = make_net("dni_aux")
    symbols, targets = sequence(4)
    _, state = net.train_chunk(symbols, targets, None, double_state(net))
    for tensor in (state.h, state.c, state.h_before, state.c_before):
        assert tensor.grad_fn is None and not tensor.requires_grad


def test_fresh_sg_model_emits_zero_and_has_no_output_nonlinearity():
    net = RecurrentNetwork(VOCAB, VOCAB, UNITS, InterfaceName.dni)
    sg = net.synthetic_gradient
    assert torch.count_nonzero(sg.output.weight) == 0 and torch.count_nonzero(sg.output.bias) == 0
    assert isinstance(list(sg.modules())[-1], nn.Linear)
    assert torch.count_nonzero(sg(torch.randn(4, UNITS))) == 0
    assert len([m for m in sg.hidden if isinstance(m, nn.Linear)]) == 1  # one hidden layer (A.3)


def test_uniform_model_scores_log2_vocab_bits_per_character():
    net = RecurrentNetwork(VOCAB, VOCAB, UNITS, InterfaceName.bptt)
    with torch.no_grad():
        net.readout.weight.zero_()
        net.readout.bias.zero_()
    tokens = torch.randint(VOCAB, (500,))
    assert bits_per_character(net, tokens, 4, torch.device("cpu")) == pytest.approx(math.log2(VOCAB))


def test_sg_loss_weight_scales_the_sg_and_aux_gradients():
    symbols, targets = sequence(6)
    grads = {}
    for weight in (1.0, 3.0):
        net = make_net("dni_aux", sg_loss_weight=weight)
        _, state = net.train_chunk(symbols[:3], targets[:3], None, double_state(net))
        net.zero_grad()
        net.train_chunk(symbols[3:], targets[3:], None, state)
        grads[weight] = (net.synthetic_gradient.output.weight.grad.clone(), net.future_sg_head.weight.grad.clone())
    torch.testing.assert_close(grads[3.0][0], 3 * grads[1.0][0])
    torch.testing.assert_close(grads[3.0][1], 3 * grads[1.0][1])


def test_sg_metrics_report_the_explained_share_of_the_target():
    net = make_net("dni")
    symbols, targets = sequence(6)
    _, state = net.train_chunk(symbols[:3], targets[:3], None, double_state(net))
    result, _ = net.train_chunk(symbols[3:], targets[3:], None, state)
    metrics = result.sg_metrics()
    norm2 = result.sg_target.pow(2).sum(1).mean().item()
    assert metrics["train/sg_target_norm2"] == pytest.approx(norm2)
    assert metrics["train/sg_explained"] == pytest.approx(1 - result.sg_loss.item() / norm2)
    assert "train/aux_loss" not in metrics
    assert make_net("bptt").train_chunk(symbols[:3], targets[:3], None, double_state(net))[0].sg_metrics() == {}
