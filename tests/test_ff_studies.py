"""The feed-forward studies of section 3.1 and appendix A.2: sparse updates, complete
unlock, DNI positions, SG quality, the stale-gradient baseline."""
import copy
import json
import re
import subprocess
import sys

import pytest
import torch

from dni_repro.config import REPO_ROOT, validate
from dni_repro.dni import DNI, BackpropInterface, GradientMessage, StaleGradientInterface
from dni_repro.errors import ConfigError
from dni_repro.models.complete_unlock import UnlockedStack
from dni_repro.experiments.feedforward_setup import build_network
from dni_repro.experiments.sg_quality import agreement, true_boundary_gradients
from dni_repro.experiments.update_schedule import LayerUpdateSampler
from tests.conftest import CLI_ENV, compose_config, run_in_process
from tests.test_dni_core import batch, layer_parameters, make_net, randomise_sg_outputs, true_hidden_gradients


def gradients(net) -> list:
    return [None if p.grad is None else p.grad.clone() for p in net.parameters()]


def metric_lines(run_dir, drop_prefix: str = "") -> list[dict]:
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if not (drop_prefix and k.startswith(drop_prefix))} for line in lines]


# Sparse updates (Fig. 5 left)


def test_all_true_mask_is_plain_dni():
    torch.manual_seed(0)
    net = make_net("dni", depth=4)
    randomise_sg_outputs(net)
    twin = copy.deepcopy(net)
    inputs, labels = batch()
    net.train_step(inputs, labels)
    twin.train_step(inputs, labels, update_mask=[True] * 4)
    for plain, masked in zip(gradients(net), gradients(twin)):
        torch.testing.assert_close(masked, plain, rtol=0, atol=0)
    assert all(LayerUpdateSampler(4, 1.0, seed=3).draw() == [True] * 4 for _ in range(20))


# Narrow layers and SG models for the runs that only compare one run with another: a fraction of the time.
NARROW = ("model.width=16", "model.sg_width=16")


def test_p_update_one_trains_exactly_like_plain_dni(tmp_path):
    common = ["interface=dni", "model.depth=4", "trainer.max_steps=6", "seed=5", *NARROW]
    run_in_process(common, tmp_path / "plain")
    run_in_process([*common, "interface.p_update=1.0"], tmp_path / "sparse")
    assert metric_lines(tmp_path / "sparse") == metric_lines(tmp_path / "plain")


def adam_state(optimizer, parameters):
    return [{key: value.clone() for key, value in optimizer.state[p].items()} for p in parameters]


@pytest.mark.parametrize("interface", ["dni", "cdni"])
@pytest.mark.parametrize("unlocked", [False, True], ids=["sparse", "complete-unlock"])
def test_a_skipped_layer_keeps_its_parameters_and_optimizer_state(interface, unlocked):
    torch.manual_seed(1)
    extra = ["interface.synthetic_inputs=true", "interface.input_model.hidden_width=16"] if unlocked else []
    cfg = compose_config([f"interface={interface}", "model.depth=4", "model.width=12", "model.sg_width=20", *extra])
    net = build_network(cfg.model, cfg.interface, (1, 28, 28), 10, batch_size=16)
    assert isinstance(net, UnlockedStack) == unlocked
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for seed in range(3):  # give every layer some optimizer state first
        optimizer.zero_grad(set_to_none=True)
        net.train_step(*batch(seed))
        optimizer.step()
    skipped = list(net.layers[1].parameters())
    others = [p for index in (0, 2, 3) for p in net.layers[index].parameters()]
    before = [p.detach().clone() for p in skipped]
    state_before = adam_state(optimizer, skipped)
    others_before = [p.detach().clone() for p in others]

    optimizer.zero_grad(set_to_none=True)
    net.train_step(*batch(9), update_mask=[True, False, True, True])
    optimizer.step()

    assert all(p.grad is None for p in skipped)
    for parameter, old in zip(skipped, before):
        torch.testing.assert_close(parameter, old, rtol=0, atol=0)
    for state, old_state in zip(adam_state(optimizer, skipped), state_before):
        for key in old_state:
            torch.testing.assert_close(state[key], old_state[key], rtol=0, atol=0)
    assert all(not torch.equal(p, old) for p, old in zip(others, others_before))


def test_update_masks_follow_p_update_and_resume_from_their_state():
    sampler = LayerUpdateSampler(4, 0.3, seed=0)
    draws = torch.tensor([sampler.draw() for _ in range(4000)], dtype=torch.float)
    assert abs(draws.mean().item() - 0.3) < 0.02
    state = sampler.state_dict()
    following = [sampler.draw() for _ in range(5)]
    restored = LayerUpdateSampler(4, 0.3, seed=123)
    restored.load_state_dict(state)
    assert [restored.draw() for _ in range(5)] == following


def test_sparse_run_resumes_exactly_after_a_crash(tmp_path, monkeypatch):
    from tests.test_reproducibility import crash_after_logging, metrics_lines

    sparse_run = ("interface=dni", "interface.p_update=0.5", "trainer.max_steps=9", "trainer.checkpoint_every=3", *NARROW)
    run_in_process(list(sparse_run), tmp_path / "whole")
    crash_after_logging(monkeypatch, tmp_path / "killed", run=sparse_run)
    run_in_process([], tmp_path / "killed", resume=True)
    assert metrics_lines(tmp_path / "killed") == metrics_lines(tmp_path / "whole")


# Complete unlock (Fig. 5 right)


def unlocked_net(interface: str = "cdni") -> UnlockedStack:
    cfg = compose_config(
        [f"interface={interface}", "interface.synthetic_inputs=true", "model.depth=4", "model.width=12",
         "model.sg_width=20", "interface.sg.hidden_layers=1"]
    )
    return build_network(cfg.model, cfg.interface, (1, 28, 28), 10, batch_size=16)


def test_complete_unlock_evaluates_with_real_inputs():
    torch.manual_seed(2)
    net = unlocked_net().eval()
    calls = []
    for model in net.input_models:
        model.register_forward_hook(lambda *args: calls.append(1))
    inputs, _ = batch()
    x = inputs
    for layer in net.layers:
        x = layer(x)
    torch.testing.assert_close(net(inputs), x, rtol=0, atol=0)
    assert calls == []


def test_complete_unlock_keeps_labels_out_of_the_forward_path():
    torch.manual_seed(3)
    net = unlocked_net("cdni")
    inputs, labels = batch(3)
    other_labels = (labels + 1) % 10

    def forward_path_inputs(labels_used):
        twin = copy.deepcopy(net)
        seen, sg_contexts = [], []
        for module in [*twin.layers, *twin.input_models]:
            module.register_forward_pre_hook(lambda module, args: seen.append([a.detach().clone() for a in args]))
        for dni in twin.interfaces:
            dni.sg_model.register_forward_pre_hook(lambda module, args: sg_contexts.append(args[1]))
        twin.train_step(inputs, labels_used)
        return seen, sg_contexts

    seen, contexts = forward_path_inputs(labels)
    seen_other, contexts_other = forward_path_inputs(other_labels)
    # Layers and input models take one tensor, the same whatever the labels are...
    assert all(len(args) == 1 for args in seen)
    for args, args_other in zip(seen, seen_other):
        torch.testing.assert_close(args[0], args_other[0], rtol=0, atol=0)
    # ...while the cDNI gradient models do see the labels.
    assert all(c is not None for c in contexts) and not torch.equal(contexts[0], contexts_other[0])


def test_complete_unlock_regresses_input_models_to_real_outputs():
    torch.manual_seed(4)
    net = unlocked_net("dni")
    inputs, labels = batch(4)
    # Only the input models step, so their targets (the layers' real outputs) stay put.
    optimizer = torch.optim.Adam(net.input_models.parameters(), lr=3e-3)

    @torch.no_grad()
    def input_model_errors():
        x, errors = inputs, []
        for layer, model in zip(net.layers, net.input_models):
            x = layer(x)
            errors.append(torch.nn.functional.mse_loss(model(inputs), x).item())
        return errors

    start = input_model_errors()
    for _ in range(60):
        optimizer.zero_grad(set_to_none=True)
        net.train_step(inputs, labels)
        optimizer.step()
    assert all(after < 0.3 * before for after, before in zip(input_model_errors(), start))


def test_busy_classifier_returns_no_loss():
    net = unlocked_net("dni")
    loss, _ = net.train_step(*batch(), update_mask=[True, True, True, False])
    assert loss is None
    loss, _ = net.train_step(*batch(), update_mask=[False, False, False, True])
    assert loss is not None and torch.isfinite(loss)


# DNI at chosen positions (Fig. 9)


def test_positions_put_dni_only_on_the_listed_boundaries():
    cfg = compose_config(["interface=dni", "model.depth=6", "interface.positions=[2,4]"])
    net = build_network(cfg.model, cfg.interface, (1, 28, 28), 10, batch_size=8)
    kinds = [type(interface) for interface in net.interfaces]
    assert kinds == [BackpropInterface, DNI, BackpropInterface, DNI, BackpropInterface]


def test_a_single_dni_regresses_to_the_true_gradient():
    torch.manual_seed(5)
    cfg = compose_config(["interface=dni", "model.depth=4", "model.width=12", "model.sg_width=20",
                          "interface.positions=[2]"])
    net = build_network(cfg.model, cfg.interface, (1, 28, 28), 10, batch_size=16)
    randomise_sg_outputs_of(net)
    inputs, labels = batch(5)
    expected = true_hidden_gradients(net, inputs, labels)[1]
    received = []
    dni = net.interfaces[1]
    original = dni.receive
    dni.receive = lambda message: received.append(message) or original(message)
    net.train_step(inputs, labels)
    assert len(received) == 1 and received[0].bootstrapped is False
    torch.testing.assert_close(received[0].gradient, expected)


def randomise_sg_outputs_of(net):
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for interface in net.interfaces:
            if isinstance(interface, DNI):
                for parameter in interface.sg_model.output.parameters():
                    parameter.copy_(0.05 * torch.randn(parameter.shape, generator=generator))


# SG quality (Fig. 10)


def test_agreement_on_known_pairs():
    v = torch.tensor([[1.0, -2.0, 3.0, -0.5], [0.2, 0.1, -4.0, 2.0]])
    same = agreement(v, v.clone())
    assert same["cosine"] == pytest.approx(1.0) and same["sign_error"] == 0.0 and same["l2"] == 0.0
    opposite = agreement(v, -v)
    assert opposite["cosine"] == pytest.approx(-1.0) and opposite["sign_error"] == 1.0
    assert opposite["l2"] == pytest.approx((2 * v).norm(dim=1).mean().item())
    half = agreement(torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0, -1.0]]))
    assert half["cosine"] == pytest.approx(0.0, abs=1e-7) and half["sign_error"] == 0.5


def test_true_boundary_gradients_match_backprop_and_leave_batchnorm_alone():
    torch.manual_seed(6)
    net = make_net("dni", depth=4)
    inputs, labels = batch(6)
    buffers = [b.clone() for b in net.buffers()]
    expected = true_hidden_gradients(net, inputs, labels)
    got = true_boundary_gradients(net, inputs, labels)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e)
    for b, old in zip(net.buffers(), buffers):
        torch.testing.assert_close(b, old, rtol=0, atol=0)
    assert all(p.grad is None for p in net.parameters())


@pytest.mark.parametrize("interface", ["dni", "stale"])
def test_measuring_sg_quality_does_not_change_training(interface, tmp_path):
    common = [f"interface={interface}", "model.depth=4", "trainer.max_steps=6", "trainer.log_every=1", "seed=2", *NARROW]
    run_in_process(common, tmp_path / "plain")
    run_in_process([*common, "trainer.sg_quality_every=2"], tmp_path / "measured")
    measured = metric_lines(tmp_path / "measured")
    assert metric_lines(tmp_path / "measured", drop_prefix="sg_quality/") == metric_lines(tmp_path / "plain")
    logged = [line for line in measured if any(k.startswith("sg_quality/") for k in line)]
    assert [line["step"] for line in logged] == [2, 4, 6]
    keys = {k for line in logged for k in line if k.startswith("sg_quality/")}
    assert {f"sg_quality/boundary{b}/{ref}_{m}" for b in (1, 2, 3) for ref in ("true", "target")
            for m in ("l2", "cosine", "sign_error")} == keys
    # The top boundary's target is the true gradient of the loss.
    for line in logged:
        assert line["sg_quality/boundary3/target_l2"] == pytest.approx(line["sg_quality/boundary3/true_l2"])


# The stale-gradient baseline (section 3.1)


def test_stale_interface_feeds_a_moving_average_of_past_gradients():
    decay = 0.25
    stale = StaleGradientInterface((3,), batch_size=2, decay=decay)
    first, second = torch.randn(2, 3), torch.randn(2, 3)

    def sent_gradient():
        h = torch.zeros(2, 3, requires_grad=True)
        stale.send(h)
        return h.grad

    assert torch.equal(sent_gradient(), torch.zeros(2, 3))  # starts at zero, like a fresh SG model
    stale.receive(GradientMessage(first, bootstrapped=False))
    torch.testing.assert_close(sent_gradient(), (1 - decay) * first)
    stale.receive(GradientMessage(second, bootstrapped=False))
    torch.testing.assert_close(sent_gradient(), (1 - decay) * second + decay * (1 - decay) * first)


def test_stale_decay_zero_replays_the_previous_batch_gradient():
    torch.manual_seed(7)
    net = make_net("stale", depth=3)
    top = net.interfaces[-1]  # its target is the true loss gradient, nonzero from the first step
    top.decay = 0.0
    inputs, labels = batch(7)
    expected = true_hidden_gradients(net, inputs, labels)[-1]
    net.train_step(inputs, labels)
    torch.testing.assert_close(top.average, expected)
    h = net.layers[1](net.layers[0](batch(8)[0]))
    h.retain_grad()
    top.send(h)
    torch.testing.assert_close(h.grad, expected)


# Config checks


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["interface=dni", "interface.p_update=0"], "interface.p_update must be in (0, 1]"),
        (["interface=dni", "interface.p_update=1.5"], "interface.p_update must be in (0, 1]"),
        (["interface=bprop", "interface.p_update=0.5"], "need interface=dni or cdni"),
        (["interface=dni", "interface.p_update=0.5", "interface.positions=[1]"], "need interface=dni or cdni"),
        (["interface=dni", "model=cnn", "interface.synthetic_inputs=true"], "supports model=fcn only"),
        (["interface=dni", "model.depth=4", "interface.positions=[4]"], "interface.positions lists distinct"),
        (["interface=dni", "interface.positions=[1,1]"], "interface.positions lists distinct"),
        (["interface=stale", "interface.stale_decay=1"], "interface.stale_decay must be in [0, 1)"),
        (["interface=bprop", "trainer.sg_quality_every=5"], "trainer.sg_quality_every compares"),
        (["interface=dni", "trainer.sg_quality_every=-1"], "trainer.sg_quality_every must be >= 0"),
    ],
    ids=["p-zero", "p-above-one", "sparse-bprop", "sparse-positions", "unlock-cnn", "position-range",
         "position-repeat", "stale-decay", "quality-bprop", "quality-negative"],
)
def test_impossible_study_settings_are_rejected(overrides, expected):
    with pytest.raises(ConfigError, match=re.escape(expected)):
        validate(compose_config(overrides))


# Reports (make fig5 / fig9 / ...)


def study_script(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "scripts/make_ff_studies.py", *args], cwd=REPO_ROOT, env=CLI_ENV, capture_output=True, text=True
    )


def test_fig9_report_tabulates_positions_and_plots_sg_quality(tmp_path):
    logs = tmp_path / "logs"
    six = ["model.depth=6", "model.width=16", "model.sg_width=16"]
    run_in_process(["experiment=fig9_bprop", "dataset=mnist_5k", *six], logs / "bprop")
    for k in (1, 5):
        run_in_process(["experiment=fig9_dni", "dataset=mnist_5k", f"interface.positions=[{k}]",
                        "trainer.sg_quality_every=2", *six], logs / f"dni{k}")
        run_in_process(["experiment=fig9_cut", "dataset=mnist_5k", f"interface.positions=[{k}]", *six], logs / f"cut{k}")
    result = study_script(["fig9", "--logs", str(logs), "--out-dir", str(tmp_path / "results")])
    assert result.returncode == 0, result.stderr
    markdown = (tmp_path / "results" / "fig9.md").read_text()
    summary = json.loads((logs / "dni5" / "summary.json").read_text())
    assert f"| 5 | {summary['test_error']:.1f} | 3.4 |" in markdown  # ours beside the paper's end point
    assert "| 2 | — | — | — | — |" in markdown  # a position not run stays empty
    assert "| smoke |" in markdown and summary["provenance"]["git_commit"] in markdown
    for png in ("fig9.png", "fig10.png"):
        assert (tmp_path / "results" / png).stat().st_size > 10_000


def test_study_report_without_runs_says_what_to_run(tmp_path):
    result = study_script(["stale-baseline", "--logs", str(tmp_path / "nothing"), "--out-dir", str(tmp_path)])
    assert result.returncode == 1
    assert "make stale-baseline" in result.stderr and not list(tmp_path.iterdir())
