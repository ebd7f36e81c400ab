"""The multi-network system of section 3.3: labels, update rates, the regimes' gradients, runs and resume."""
import copy
import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dni_repro.runs.checkpoint import load_checkpoint
from dni_repro.config import REPO_ROOT, validate
from dni_repro.data.digit_stream import DigitStream, WindowCounter
from dni_repro.names import InterfaceName
from dni_repro.models.multi_network import MultiNetworkTrainer, TwoNetworkSystem
from dni_repro.errors import ConfigError, DataError
from dni_repro.models.bn_lstm import BatchNormLSTMCell
from tests.conftest import CLI_ENV, compose_config, run_in_process, train_cli
from tests.fake_datasets import write_idx_dataset
from tests.test_recurrent_runs import logged_values
from tests.test_reproducibility import crash_after_logging, metrics_lines

PERIOD, BATCH, UNITS = 2, 4, 8


def test_window_labels_on_a_hand_made_digit_sequence():
    # Two streams, T=2: each row below is one window (the two digits of stream 0, then of stream 1).
    windows = [([3, 1], [3, 3]), ([3, 4], [3, 3]), ([2, 3], [0, 3]), ([5, 7], [8, 8])]
    counter = WindowCounter(period=2, batch_size=2, device=torch.device("cpu"))
    odd_counts, three_counts = [], []
    for stream0, stream1 in windows:
        odd, threes = counter.labels(torch.tensor([stream0, stream1]).T)
        odd_counts.append(odd.tolist())
        three_counts.append(threes.tolist())
    assert odd_counts == [[2, 2], [1, 2], [1, 1], [2, 0]]
    # 3s over the last T^2 = 4 digits; the first window has seen only two.
    assert three_counts == [[1, 2], [2, 4], [2, 3], [1, 1]]


def fake_digits(count: int = 50):
    """Images whose every pixel holds the digit's own label, so a window's labels can be read off its images."""
    labels = torch.arange(count) % 10
    return labels.float().view(-1, 1, 1, 1).expand(-1, 1, 28, 28).contiguous(), labels


def test_stream_labels_match_its_images_and_resume_from_its_state():
    images, labels = fake_digits()
    stream = DigitStream(images, labels, batch_size=3, period=3, seed=0)
    counter = WindowCounter(period=3, batch_size=3, device=torch.device("cpu"))
    for _ in range(4):
        window, odd, threes = stream.next_window()
        assert window.shape == (3, 3, 1, 28, 28)
        expected_odd, expected_threes = counter.labels(window[:, :, 0, 0, 0].long())
        assert torch.equal(odd, expected_odd) and torch.equal(threes, expected_threes)
    saved = copy.deepcopy(stream.state_dict())
    following = [stream.next_window() for _ in range(3)]
    resumed = DigitStream(images, labels, batch_size=3, period=3, seed=99)
    resumed.load_state_dict(saved)
    for expected, actual in zip(following, (resumed.next_window() for _ in range(3))):
        assert all(torch.equal(a, b) for a, b in zip(expected, actual))


def test_lstm_cell_without_batch_norm_is_torch_lstm_cell():
    torch.manual_seed(0)
    cell = BatchNormLSTMCell(5, 7, batch_norm=False)
    reference = nn.LSTMCell(5, 7)
    with torch.no_grad():
        reference.weight_ih.copy_(cell.input.weight)
        reference.weight_hh.copy_(cell.recurrent.weight)
        reference.bias_ih.copy_(cell.bias)
        reference.bias_hh.zero_()
    x, h, c = torch.randn(3, 5), torch.randn(3, 7), torch.randn(3, 7)
    ours, theirs = cell(x, (h, c)), reference(x, (h, c))
    assert torch.allclose(ours[0], theirs[0], atol=1e-6) and torch.allclose(ours[1], theirs[1], atol=1e-6)


def test_recurrent_batch_norm_starts_at_gamma_0_1_and_normalises_per_feature():
    cell = BatchNormLSTMCell(5, 7, batch_norm=True)
    assert torch.all(cell.input_norm.scale == 0.1) and torch.all(cell.cell_norm.weight == 0.1)
    projected = cell.input_norm(torch.randn(64, 28) * 5 + 3)
    assert torch.allclose(projected.mean(dim=0), torch.zeros(28), atol=1e-5)
    assert torch.allclose(projected.std(dim=0, unbiased=False), torch.full((28,), 0.1), atol=1e-3)


def make_system(regime: InterfaceName, seed: int = 0) -> TwoNetworkSystem:
    torch.manual_seed(seed)
    return TwoNetworkSystem(regime, image_size=28 * 28, units=UNITS, fcn_layers=2, period=PERIOD)


def make_trainer(system: TwoNetworkSystem, lr: float = 1e-2, sg_scale: float = 10.0) -> MultiNetworkTrainer:
    def sgd(module):
        return torch.optim.SGD(module.parameters(), lr=lr) if module is not None else None

    return MultiNetworkTrainer(system, sgd(system.network_a), sgd(system.network_b), sgd(system.synthetic_gradient),
                               PERIOD, BATCH, torch.device("cpu"), sg_scale=sg_scale)


def windows(count: int, seed: int = 0):
    images, labels = fake_digits()
    stream = DigitStream(images / 9, labels, BATCH, PERIOD, seed)
    return [stream.next_window() for _ in range(count)]


def flat(module: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


@pytest.mark.parametrize("regime", ["e2e", "dni", "decoupled_no_dni"])
def test_a_updates_every_t_steps_when_decoupled_and_every_t_squared_steps_end_to_end(regime):
    system = make_system(InterfaceName(regime))
    trainer = make_trainer(system)
    a_changed, b_changed = [], []
    for window in windows(3 * PERIOD):
        a_before, b_before = flat(system.network_a), flat(system.network_b)
        result = trainer.train_window(*window)
        a_changed.append(not torch.equal(a_before, flat(system.network_a)))
        b_changed.append(not torch.equal(b_before, flat(system.network_b)))
        assert (result.a_updated, result.b_updated) == (a_changed[-1], b_changed[-1])
    every_window, every_period = [True] * (3 * PERIOD), [False, True] * 3  # T = 2 windows per period
    assert a_changed == (every_period if regime == "e2e" else every_window)
    assert b_changed == every_period


def a_weights_after_training(regime: InterfaceName, b_seed: int, window_count: int) -> torch.Tensor:
    """Network A's weights after `window_count` windows, with A's initial weights fixed and B's drawn from `b_seed`."""
    system = make_system(regime)
    torch.manual_seed(b_seed)
    system.network_b = TwoNetworkSystem(InterfaceName.e2e, 28 * 28, UNITS, 2, PERIOD).network_b
    trainer = make_trainer(system)
    for window in windows(window_count):
        trainer.train_window(*window)
        if regime == InterfaceName.decoupled_no_dni:
            assert all(p.grad is None for p in system.network_a.message_head.parameters())
    return flat(system.network_a)


def test_decoupled_without_dni_gives_a_exactly_zero_gradient_from_b():
    """A's trajectory is bit-identical whatever B is, and its message head never gets a gradient."""
    regime = InterfaceName.decoupled_no_dni
    assert torch.equal(a_weights_after_training(regime, 1, 3 * PERIOD), a_weights_after_training(regime, 2, 3 * PERIOD))
    # With dni, B reaches A through the learned SG: the same experiment diverges.
    assert not torch.equal(a_weights_after_training(InterfaceName.dni, 1, 3 * PERIOD),
                           a_weights_after_training(InterfaceName.dni, 2, 3 * PERIOD))


class OracleSyntheticGradient(nn.Module):
    """Emits a fixed gradient for every message (the test sets it before each window)."""

    def __init__(self):
        super().__init__()
        self.offset = nn.Parameter(torch.zeros(()))  # lets the trainer's SG regression run
        self.value = torch.zeros(BATCH, UNITS)

    def forward(self, messages: torch.Tensor) -> torch.Tensor:
        return self.value.repeat(messages.shape[0] // BATCH, 1) + self.offset


def a_gradients(network: nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() if p.grad is not None else torch.zeros(p.numel()) for p in network.parameters()])


def test_dni_update_with_an_oracle_sg_matches_the_end_to_end_gradient_of_its_window():
    data = windows(PERIOD)
    system = make_system(InterfaceName.e2e)
    # Reference: the joint graph over one update period, each window of A with its own copy of A's
    # weights, so the gradient of each copy is what that window contributes to the e2e update.
    copies = [copy.deepcopy(system.network_a) for _ in range(PERIOD)]
    a_state, b_state = system.initial_states(BATCH, torch.device("cpu"))
    network_b = copy.deepcopy(system.network_b)
    total, messages = 0, []
    for network_a, (images, odd, threes) in zip(copies, data):
        odd_logits, message, a_state = network_a(images, a_state)
        message.retain_grad()
        messages.append(message)
        b_logits, b_state = network_b(message, b_state)
        total = total + F.cross_entropy(odd_logits, odd) + F.cross_entropy(b_logits, threes)
    total.backward()

    # The production e2e update sees the sum of the windows' contributions.
    e2e_trainer = make_trainer(system, lr=0.0)
    for window in data:
        e2e_trainer.train_window(*window)
    assert torch.allclose(a_gradients(system.network_a), sum(a_gradients(c) for c in copies), atol=1e-6)

    # dni with the true message gradient (per example, unscaled) as its SG: the last window's
    # update equals that window's e2e contribution; nothing later in the period depends on A's state.
    dni = make_system(InterfaceName.dni)
    dni.network_a.load_state_dict(system.network_a.state_dict())
    dni.synthetic_gradient = OracleSyntheticGradient()
    trainer = make_trainer(dni, lr=0.0, sg_scale=1.0)
    trainer.train_window(*data[0])
    dni.synthetic_gradient.value = messages[-1].grad * BATCH
    trainer.train_window(*data[1])
    assert torch.allclose(a_gradients(dni.network_a), a_gradients(copies[-1]), atol=1e-6)
    assert a_gradients(dni.network_a.message_head).abs().sum() > 0


def test_sg_model_is_regressed_on_the_true_message_gradient_of_b():
    system = make_system(InterfaceName.dni)
    trainer = make_trainer(system, lr=0.0)
    data = windows(PERIOD)
    results = [trainer.train_window(*window) for window in data]
    assert results[0].sg_loss is None and results[-1].sg_loss is not None
    # A fresh SG model emits zero, so its loss is the mean squared norm of its targets, which must be non-zero.
    assert results[-1].sg_loss.item() == pytest.approx(results[-1].sg_target_norm2.item())
    assert results[-1].sg_loss.item() > 0
    # Only the SG model's output layer sees a gradient at first (its input to it is zero-weighted).
    assert system.synthetic_gradient.output.weight.grad.abs().sum() > 0


MULTI_RUN = ("experiment=fig8", "dataset.digit_stream.period=2", "trainer.max_steps=24", "trainer.log_every=4",
             "trainer.eval_every=4", "trainer.checkpoint_every=8", "dataset.digit_stream.eval_length=8")


@pytest.mark.parametrize("regime", ["e2e", "dni", "decoupled_no_dni"])
def test_fig8_run_logs_both_test_errors(regime, tmp_path):
    summary = run_in_process([*MULTI_RUN, f"interface={regime}"], tmp_path)
    assert summary["status"] == "completed" and summary["steps"] == 24
    lines = metrics_lines(tmp_path)
    assert [line["step"] for line in lines] == [4, 8, 12, 16, 20, 24]
    assert all(0 <= line["test/a_error"] <= 1 and 0 <= line["test/b_error"] <= 1 for line in lines)
    assert ("train/sg_loss" in lines[-1]) == (regime == "dni")
    assert summary["test_b_error"] == lines[-1]["test/b_error"]


def test_resume_continues_the_stream_and_both_networks_states(tmp_path, monkeypatch):
    run = (*MULTI_RUN, "interface=dni")
    run_in_process(list(run), tmp_path / "whole")
    crash_after_logging(monkeypatch, tmp_path / "killed", step=12, run=run)
    saved = load_checkpoint(tmp_path / "killed")
    assert saved["step"] == 8
    assert saved["stream"]["history"].shape == (2, 8)  # T^2 - T labels for each of the 8 streams
    assert all(t.abs().sum() > 0 for t in (*saved["networks_state"]["a_state"], *saved["networks_state"]["b_state"]))
    run_in_process([], tmp_path / "killed", resume=True)
    assert logged_values(tmp_path / "killed") == logged_values(tmp_path / "whole")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["trainer.max_steps=30"], "multiple of T^2=16"),
        (["interface=bptt"], "not a multi-network regime"),
        (["model=fcn"], "use model=two_rnn"),
        (["dataset.digit_stream.digits=cifar10"], "not a digit dataset"),
        (["optimizer.lr_decay_at=[0.5]"], "lr_decay_at=[]"),
        (["dataset.digit_stream.eval_length=10"], "multiple of the period"),
    ],
)
def test_bad_multi_network_settings_fail_with_a_clear_message(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]").replace("^", r"\^")):
        validate(compose_config(["experiment=fig8", *overrides]))


def test_multi_network_regimes_are_refused_on_other_tasks():
    with pytest.raises(ConfigError, match="belongs to the multi-network task"):
        validate(compose_config(["interface=e2e"]))


def test_cli_rejects_a_run_length_off_the_update_period(tmp_path):
    result = train_cli(["experiment=fig8", "trainer.max_steps=20", f"hydra.run.dir={tmp_path}/run"])
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("error: trainer.max_steps=20 must be a multiple of T^2=16")
    assert not list(tmp_path.rglob("summary.json"))


def write_test_errors(run_dir, a_errors, b_errors):
    """Replace a run's curves with hand-made ones, evaluated every 4 steps."""
    lines = [{"step": 4 * (i + 1), "test/a_error": a, "test/b_error": b} for i, (a, b) in enumerate(zip(a_errors, b_errors))]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_fig8_report_measures_steps_to_the_final_error_and_quotes_the_paper(tmp_path):
    for regime in ("e2e", "dni", "decoupled_no_dni"):
        run_in_process([*MULTI_RUN, f"interface={regime}"], tmp_path / "fig8" / regime)
    write_test_errors(tmp_path / "fig8" / "e2e", [0.6, 0.5, 0.4, 0.3, 0.3, 0.3], [0.7, 0.6, 0.5, 0.4, 0.4, 0.4])
    write_test_errors(tmp_path / "fig8" / "dni", [0.5, 0.3, 0.3, 0.29, 0.3, 0.31], [0.7, 0.6, 0.5, 0.45, 0.42, 0.42])
    write_test_errors(tmp_path / "fig8" / "decoupled_no_dni", [0.5, 0.3, 0.2, 0.2, 0.2, 0.2], [0.7] * 6)
    result = subprocess.run([sys.executable, "scripts/make_fig8.py", "--logs", str(tmp_path / "fig8"),
                             "--out-dir", str(tmp_path / "out")], cwd=REPO_ROOT, env=CLI_ENV, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    markdown = (tmp_path / "out" / "fig8.md").read_text()
    # Final error: the mean of the last three evaluations; reaching it: the first evaluation within 0.01.
    assert "| End-to-end (e2e) | 0 | 0.300 | 0.400 | 16 | 16 | 1 |" in markdown
    assert "| DNI | 0 | 0.300 | 0.430 | 8 | 8 | 2 |" in markdown
    assert "| Decoupled, no DNI | 0 | 0.200 | 0.700 | 12 | 8 | 2 |" in markdown
    assert "e2e A at step 16; DNI A at step 8, ratio 0.50; Decoupled, no DNI A at step 8, ratio 0.50" in markdown
    # A quarter of the 24-step runs: the evaluation at step 4.
    assert "after a quarter of the run: DNI 0.700, e2e 0.700; final: DNI 0.430, e2e 0.400" in markdown
    assert "under half the steps" in markdown and "profile: smoke" in markdown
    assert (tmp_path / "out" / "fig8.png").stat().st_size > 10_000
    for extra, message in ((["--logs", str(tmp_path / "none")], "make fig8"),
                           (["--logs", str(tmp_path / "fig8"), "--profile", "paper"], "of profile paper")):
        empty = subprocess.run([sys.executable, "scripts/make_fig8.py", *extra], cwd=REPO_ROOT, env=CLI_ENV,
                               capture_output=True, text=True)
        assert empty.returncode == 1 and message in empty.stderr
    # Runs of two profiles are never mixed into one report.
    summary_path = tmp_path / "fig8" / "dni" / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["provenance"]["profile"] = "paper"
    summary_path.write_text(json.dumps(summary))
    mixed = subprocess.run([sys.executable, "scripts/make_fig8.py", "--logs", str(tmp_path / "fig8")], cwd=REPO_ROOT,
                           env=CLI_ENV, capture_output=True, text=True)
    assert mixed.returncode == 1 and "profiles paper, smoke; pick one with --profile" in mixed.stderr


@pytest.mark.parametrize("profile", ["paper", "quick", "smoke"])
def test_fig8_composes_under_every_profile_with_the_paper_factors(profile):
    cfg = compose_config(["experiment=fig8", f"profile={profile}"])
    validate(cfg)
    assert cfg.dataset.digit_stream.period == 4 and cfg.interface.sg_scale == 10.0
    assert cfg.interface.sg.hidden_layers == 1 and cfg.interface.sg.hidden_width == cfg.model.width
    if profile == "paper":
        assert cfg.optimizer.lr == 1e-5 and cfg.model.width == 256 and cfg.model.recurrent_batch_norm
    # The recurrent LSTM keeps its own factor, 0.1 (A.3).
    assert compose_config(["experiment=table2_copy", f"profile={profile}"]).interface.sg_scale == 0.1


def test_sg_model_learns_the_message_gradient_when_the_networks_hold_still():
    """A and B frozen, the same update period repeated from the same states: M's regression converges."""
    system = make_system(InterfaceName.dni)
    frozen = lambda module: torch.optim.SGD(module.parameters(), lr=0.0)  # noqa: E731
    trainer = MultiNetworkTrainer(system, frozen(system.network_a), frozen(system.network_b),
                                  torch.optim.Adam(system.synthetic_gradient.parameters(), lr=1e-2),
                                  PERIOD, BATCH, torch.device("cpu"), sg_scale=10.0)
    system.eval()  # batch norm with fixed statistics, so the targets are the same every period
    data = windows(PERIOD)
    start = (trainer.sender.state, trainer.receiver.state)
    losses, cosines = [], []
    for _ in range(200):
        trainer.sender.state, trainer.receiver.state = start
        result = [trainer.train_window(*window) for window in data][-1]
        losses.append(result.sg_loss.item() / result.sg_target_norm2.item())
        cosines.append(result.sg_cosine.item())
    assert losses[0] == pytest.approx(1.0) and cosines[0] == 0
    # Eight hidden units cannot fit every target exactly; most of it is enough to rule out a wrong sign or target.
    assert losses[-1] < 0.2 and cosines[-1] > 0.9


def test_digit_stream_reads_the_full_mnist_files_or_names_them_when_missing(tmp_path):
    run = [*MULTI_RUN, "interface=dni", "dataset.digit_stream.digits=mnist", f"paths.data_dir={tmp_path / 'data'}",
           "trainer.max_steps=4"]
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*dataset.root"):
        run_in_process(run, tmp_path / "missing")
    assert not list((tmp_path / "missing").rglob("summary.json"))
    write_idx_dataset(tmp_path / "data" / "mnist")
    assert run_in_process(run, tmp_path / "present")["status"] == "completed"
