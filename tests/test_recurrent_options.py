"""The recurrent SG options (what M reads, what it regresses to, its own learning rate, a bound on its
target) and the diagnostics that say whether the SG helps the LSTM."""
import pytest
import torch
from torch import nn

from dni_repro.config import validate
from dni_repro.errors import ConfigError
from dni_repro.experiments.recurrent_setup import build_recurrent_optimizer
from dni_repro.models.recurrent import SG_TARGET_NORM2_LIMIT, divergence
from tests.conftest import compose_config, run_in_process
from tests.test_recurrent_dni import BATCH, UNITS, OracleGradient, chunk_loss, double_state, make_net, sequence
from tests.test_recurrent_runs import logged_values
from tests.test_reproducibility import crash_after_logging


def boundary_objective(net, symbols, targets, state, gradient, scale):
    h0, c0 = state.h.clone().requires_grad_(), state.c.clone().requires_grad_()
    loss, h_end, c_end = chunk_loss(net, symbols, targets, h0, c0)
    injected = (gradient[:, :UNITS] * h_end).sum() + (gradient[:, UNITS:] * c_end).sum()
    return torch.cat(torch.autograd.grad(loss + scale * injected, (h0, c0)), dim=1)


@pytest.mark.parametrize("sg_target, scale_in_target", [("unscaled", 1.0), ("consumed", 0.1)])
def test_target_with_an_oracle_sg_is_the_true_gradient_of_its_objective(sg_target, scale_in_target):
    net = make_net("dni", sg_scale=0.1, sg_target=sg_target)
    symbols, targets = sequence(6)
    _, state = net.train_chunk(symbols[:3], targets[:3], None, double_state(net))
    future = torch.randn(BATCH, 2 * UNITS, dtype=torch.double, generator=torch.Generator().manual_seed(3))
    net.synthetic_gradient = OracleGradient(future)
    result, _ = net.train_chunk(symbols[3:], targets[3:], None, state)
    # unscaled: d/ds0 of the chunk's loss plus M . s_T, the sum of future gradients (eq. 3);
    # consumed: the same with the 0.1 that the LSTM consumes.
    expected = boundary_objective(net, symbols[3:], targets[3:], state, future, scale_in_target)
    torch.testing.assert_close(result.sg_target, expected)


def test_unscaled_target_still_feeds_the_lstm_the_scaled_sg():
    consumed, unscaled = make_net("dni", sg_target="consumed"), make_net("dni", sg_target="unscaled")
    symbols, targets = sequence(6)
    grads = []
    for net in (consumed, unscaled):
        _, state = net.train_chunk(symbols[:3], targets[:3], None, double_state(net))
        net.zero_grad()
        net.train_chunk(symbols[3:], targets[3:], None, state)
        grads.append({n: p.grad.clone() for n, p in net.core.named_parameters()})
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name])


@pytest.mark.parametrize("into_core", [False, True])
def test_sg_reading_h_and_c_gets_both_detached_unless_its_loss_may_reach_the_core(into_core):
    net = make_net("dni", sg_input="hc", sg_loss_into_core=into_core)
    assert net.synthetic_gradient.hidden[0].in_features == 2 * UNITS
    seen = []
    net.synthetic_gradient.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    symbols, targets = sequence(6)
    _, state = net.train_chunk(symbols[:3], targets[:3], None, double_state(net))
    seen.clear()
    net.zero_grad()
    net.train_chunk(symbols[3:], targets[3:], None, state)
    end_input, start_input = seen  # M at the chunk's end (consumed), then at its start (regressed)
    torch.testing.assert_close(start_input[:, UNITS:], state.c) if not into_core else None
    assert start_input.shape == (BATCH, 2 * UNITS) and not end_input.requires_grad
    assert start_input.requires_grad == into_core
    got = {n: p.grad.clone() for n, p in net.core.named_parameters()}
    net.zero_grad()
    loss, h_end, c_end = chunk_loss(net, symbols[3:], targets[3:], state.h, state.c)
    boundary = 0.1 * net.synthetic_gradient(torch.cat([h_end, c_end], dim=1)).detach()
    ((loss + (boundary[:, :UNITS] * h_end).sum() + (boundary[:, UNITS:] * c_end).sum()) / BATCH).backward()
    same = all(torch.allclose(got[n], p.grad) for n, p in net.core.named_parameters())
    assert same != into_core


def test_target_clip_bounds_each_examples_target_norm():
    free, clipped = make_net("dni", sg_scale=1.0), make_net("dni", sg_scale=1.0, sg_target_clip=0.05)
    symbols, targets = sequence(6)
    results = []
    for net in (free, clipped):
        _, state = net.train_chunk(symbols[:3], targets[:3], None, double_state(net))
        results.append(net.train_chunk(symbols[3:], targets[3:], None, state)[0].sg_target)
    norms = results[0].norm(dim=1)
    assert (norms > 0.05).any()
    torch.testing.assert_close(results[1].norm(dim=1), norms.clamp(max=0.05))
    torch.testing.assert_close(results[1] / results[1].norm(dim=1, keepdim=True), results[0] / norms[:, None])


def test_no_gradient_crosses_an_episodes_end_inside_a_chunk():
    net = make_net("dni", sg_scale=0.1, sg_target="unscaled")
    symbols, targets = sequence(6)
    _, state = net.train_chunk(symbols[:3], targets[:3], None, double_state(net))
    future = torch.randn(BATCH, 2 * UNITS, dtype=torch.double, generator=torch.Generator().manual_seed(3))
    net.synthetic_gradient = OracleGradient(future)
    ends = torch.zeros(3, BATCH, dtype=torch.bool)
    ends[1, 0] = True  # stream 0's episode ends at the chunk's second step
    result, next_state = net.train_chunk(symbols[3:], targets[3:], None, state, ends)
    full = boundary_objective(net, symbols[3:], targets[3:], state, future, 1.0)
    h0, c0 = state.h.clone().requires_grad_(), state.c.clone().requires_grad_()
    up_to_the_end = torch.cat(torch.autograd.grad(chunk_loss(net, symbols[3:5], targets[3:5], h0, c0)[0], (h0, c0)), dim=1)
    torch.testing.assert_close(result.sg_target[0], up_to_the_end[0])
    torch.testing.assert_close(result.sg_target[1:], full[1:])
    _, unmarked = net.train_chunk(symbols[3:], targets[3:], None, state)
    torch.testing.assert_close(next_state.h, unmarked.h)  # the state itself passes on unchanged
    assert not next_state.at_episode_end.any()


def test_the_target_at_a_boundary_where_an_episode_ended_is_zero():
    net = make_net("dni_aux", sg_input="hc")
    symbols, targets = sequence(6)
    ends = torch.zeros(3, BATCH, dtype=torch.bool)
    ends[-1, 1] = True  # stream 1's episode ends exactly at the boundary
    _, state = net.train_chunk(symbols[:3], targets[:3], None, double_state(net), ends)
    assert state.at_episode_end.tolist() == [False, True] + [False] * (BATCH - 2)
    result, _ = net.train_chunk(symbols[3:], targets[3:], None, state, torch.zeros(3, BATCH, dtype=torch.bool))
    assert result.sg_target[1].abs().sum() == 0
    assert (result.sg_target[[0, *range(2, BATCH)]].abs().sum(dim=1) > 0).all()


def test_episode_reset_needs_episodes_and_a_synthetic_gradient():
    validate(compose_config(["experiment=table2_repeat_copy", "interface=dni", "interface.sg_episode_reset=true"]))
    for overrides in (["experiment=table2_copy", "interface=bptt"], ["experiment=table2_lm", "interface=dni_aux"]):
        with pytest.raises(ConfigError, match="sg_episode_reset needs episodes"):
            validate(compose_config(overrides + ["interface.sg_episode_reset=true"]))


def test_a_blown_up_target_is_divergence():
    assert divergence(1.0, {"train/sg_target_norm2": 3.0}) == ""
    assert "SG target" in divergence(1.0, {"train/sg_target_norm2": 10 * SG_TARGET_NORM2_LIMIT})
    assert "not finite" in divergence(float("nan"), {})


def test_sg_lr_puts_the_sg_model_and_aux_head_in_a_group_of_their_own():
    cfg = compose_config(["experiment=table2_copy", "interface=dni_aux", "optimizer.sg_lr=1e-5", "model.width=8"])
    validate(cfg)
    net = make_net("dni_aux")
    optimizer = build_recurrent_optimizer(cfg, net)
    core_group, sg_group = optimizer.param_groups
    assert sg_group["lr"] == 1e-5 and core_group["lr"] == cfg.optimizer.lr
    assert {id(p) for p in sg_group["params"]} == {id(p) for p in net.sg_parameters()}
    assert len(core_group["params"]) + len(sg_group["params"]) == len(list(net.parameters()))
    assert len(build_recurrent_optimizer(compose_config(["experiment=table2_copy"]), net).param_groups) == 1
    with pytest.raises(ConfigError, match="optimizer.sg_lr must be > 0"):
        validate(compose_config(["experiment=table2_copy", "optimizer.sg_lr=0"]))


def test_fresh_sg_adds_nothing_and_a_memoryless_lstm_needs_no_longer_window():
    net = make_net("dni", sg_input="hc")
    nn.init.zeros_(net.synthetic_gradient.output.weight)
    nn.init.zeros_(net.synthetic_gradient.output.bias)
    symbols, targets = sequence(12)
    chunks = [(symbols[k:k + 3], targets[k:k + 3], None) for k in range(0, 12, 3)]
    state = double_state(net)
    state.h, state.c = torch.rand_like(state.h), torch.rand_like(state.c)
    measured = net.gradient_alignment(chunks, state)
    assert measured["grad/cosine_with_sg"] == pytest.approx(measured["grad/cosine_truncated"], abs=1e-12)
    assert measured["grad/cosine_truncated"] < 0.999999  # the window's BPTT sees across the boundaries
    with torch.no_grad():  # no memory: every gate ignores h, and the forget gate is shut
        net.core.recurrent.weight.zero_()
        net.core.recurrent.bias[UNITS:2 * UNITS] = -1e4
        net.core.peephole.zero_()
    assert net.gradient_alignment(chunks, state)["grad/cosine_truncated"] == pytest.approx(1.0, abs=1e-9)
    assert all(p.grad is None for p in net.parameters())  # nothing left in .grad


OPTIONS = ["experiment=table2_copy", "interface=dni_aux", "interface.sg_input=hc", "interface.sg_target=unscaled",
           "interface.sg_target_clip=5", "interface.sg_episode_reset=true", "optimizer.sg_lr=3e-4", "model.width=16", "trainer.max_steps=12",
           "trainer.checkpoint_every=4", "trainer.log_every=2", "trainer.grad_alignment_every=6"]


def test_resume_keeps_every_new_options_state(tmp_path, monkeypatch):
    run_in_process(OPTIONS, tmp_path / "whole")
    logged = logged_values(tmp_path / "whole")
    assert any("grad/cosine_with_sg" in line for line in logged)
    assert all("train/cell_abs_max" in line and "train/sg_cosine" in line for line in logged)
    crash_after_logging(monkeypatch, tmp_path / "killed", step=10, run=tuple(OPTIONS))
    run_in_process([], tmp_path / "killed", resume=True)
    assert logged_values(tmp_path / "killed") == logged


def test_the_explained_share_is_reported_apart_for_scored_and_unscored_chunks():
    from dni_repro.models.recurrent import ChunkResult

    target = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])
    prediction = torch.tensor([[3.0, 4.0], [0.0, 0.0], [0.0, 1.0]])  # exact, zero, half
    scored = torch.tensor([True, False, False])
    result = ChunkResult(torch.tensor(0.0), torch.tensor(1.0), sg_loss=(prediction - target).pow(2).sum() / 3,
                         sg_target=target, sg_prediction=prediction, scored=scored)
    metrics = result.sg_metrics()
    assert metrics["train/sg_explained_scored"] == pytest.approx(1.0)
    assert metrics["train/sg_explained_unscored"] == pytest.approx(1 - (1 + 1) / (1 + 4))
    assert metrics["train/sg_target_share_scored"] == pytest.approx(25 / 30)
    assert metrics["train/sg_explained"] == pytest.approx(1 - 2 / 30)
