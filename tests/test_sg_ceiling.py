"""scripts/sg_ceiling.py: the pairs it records are M's targets, and its fits can explain what is explainable."""
import subprocess
import sys

import torch
from torch import nn

from scripts.sg_ceiling import boundary_pairs, explained, fit_offline
from dni_repro.config import REPO_ROOT
from dni_repro.dni.synthetic_gradient import ReLUSyntheticGradient
from dni_repro.models.recurrent import StreamState
from tests.conftest import CLI_ENV
from tests.test_recurrent_dni import BATCH, make_net, sequence


def test_recorded_target_is_the_target_train_chunk_gives_m_without_bootstrap():
    net = make_net("dni")
    nn.init.zeros_(net.synthetic_gradient.output.weight)  # M predicts zero: nothing is bootstrapped
    nn.init.zeros_(net.synthetic_gradient.output.bias)
    chunks = [sequence(4, seed) for seed in (1, 2)]
    state = net.initial_state(BATCH, torch.device("cpu"))
    state.h, state.c = torch.randn_like(state.h).double(), torch.randn_like(state.c).double()
    start = StreamState(state.h.clone(), state.c.clone())
    feed = iter([(symbols, targets, None) for symbols, targets in chunks])
    reads, targets = boundary_pairs(net, lambda: next(feed), start, chunks=2)

    expected_targets = []
    for symbols, next_targets in chunks:
        result, state = net.train_chunk(symbols, next_targets, None, state)
        expected_targets.append(result.sg_target)
    assert reads.shape == (2 * BATCH, net.units) and torch.allclose(reads[:BATCH], start.h)
    assert torch.allclose(targets, torch.cat(expected_targets), atol=1e-10)


def test_offline_fit_explains_a_learnable_target_and_not_noise():
    generator = torch.Generator().manual_seed(0)
    reads = torch.randn(1000, 8, generator=generator)
    learnable = torch.relu(reads @ torch.randn(8, 6, generator=generator))
    noise = torch.randn(1000, 6, generator=generator)
    fitted = fit_offline(ReLUSyntheticGradient(8, 6, 1, 64), reads[:750], learnable[:750], epochs=60)
    with torch.no_grad():
        assert explained(fitted(reads[750:]), learnable[750:]) > 0.8
    fitted = fit_offline(ReLUSyntheticGradient(8, 6, 1, 64), reads[:750], noise[:750], epochs=5)
    with torch.no_grad():
        assert explained(fitted(reads[750:]), noise[750:]) < 0.05


def test_a_folder_without_a_checkpoint_is_a_one_line_error(tmp_path):
    result = subprocess.run([sys.executable, "scripts/sg_ceiling.py", str(tmp_path)], cwd=REPO_ROOT, env=CLI_ENV,
                            capture_output=True, text=True)
    assert result.returncode == 1 and "checkpoint.pt does not exist" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
