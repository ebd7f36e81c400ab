"""RDMs, weight norms and the deep-MNIST / error-approximation reports (Czarnecki et al. 2017)."""
import json
import subprocess

import pytest
import torch
from torch import nn

from dni_repro.models.feedforward import DecoupledStack
from dni_repro.dni import BackpropInterface
from dni_repro.czarnecki.representations import class_sorted_probe, dissimilarity_matrix, layer_outputs, weight_norms
from tests.conftest import run_in_process, run_script


def test_rdm_of_identical_representations_is_all_zeros():
    row = torch.tensor([0.3, -1.0, 2.0, 0.5])
    assert torch.equal(dissimilarity_matrix(row.repeat(5, 1)), torch.zeros(5, 5, dtype=torch.float64))


def test_rdm_matches_hand_values():
    representations = torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [2.0, 4.0, 6.0], [1.0, 3.0, 2.0]])
    # Row 3 centred is (-1, 1, 0); its correlation with row 1 (-1, 0, 1) is 1/2, with row 2 (1, 0, -1) -1/2.
    expected = torch.tensor(
        [
            [0.0, 2.0, 0.0, 0.5],
            [2.0, 0.0, 2.0, 1.5],
            [0.0, 2.0, 0.0, 0.5],
            [0.5, 1.5, 0.5, 0.0],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(dissimilarity_matrix(representations), expected)


def test_rdm_of_constant_examples_is_defined():
    rdm = dissimilarity_matrix(torch.tensor([[1.0, 1.0], [2.0, 2.0], [0.0, 1.0]]))
    assert torch.isfinite(rdm).all()
    assert rdm[0, 1] == 0 and rdm[0, 2] == 1 and rdm[2, 2] == 0


def test_weight_norms_match_hand_values():
    first, second = nn.Linear(2, 2), nn.Linear(2, 1)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[3.0, 0.0], [0.0, 4.0]]))
        second.weight.copy_(torch.tensor([[1.0, 2.0]]))
    net = DecoupledStack([nn.Sequential(first, nn.BatchNorm1d(2), nn.ReLU()), nn.Sequential(second)], [BackpropInterface()], 1)
    assert weight_norms(net) == pytest.approx([5.0, 5.0**0.5])


def test_class_sorted_probe_takes_the_first_examples_of_each_class_in_order():
    labels = torch.tensor([2, 0, 1, 0, 2, 1, 0])
    assert class_sorted_probe(labels, 2, 3).tolist() == [1, 3, 2, 5, 0, 4]
    with pytest.raises(ValueError, match="class 1 has 2 examples"):
        class_sorted_probe(labels, 3, 3)


def test_layer_outputs_leave_batchnorm_statistics_and_mode_alone():
    net = DecoupledStack([nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU()), nn.Sequential(nn.Linear(4, 2))],
                         [BackpropInterface()], 2)
    before = net.layers[0][1].running_mean.clone()
    outputs = layer_outputs(net, torch.randn(6, 3))
    assert [tuple(o.shape) for o in outputs] == [(6, 4), (6, 2)]
    assert torch.equal(net.layers[0][1].running_mean, before) and net.training


def script(name: str, args: list[str]) -> subprocess.CompletedProcess:
    return run_script(name, args)  # in-process: the report scripts import torch, seconds in a fresh interpreter


def test_deep_mnist_report_pairs_bprop_with_the_mid_stack_sg(tmp_path):
    logs = tmp_path / "logs"
    common = ["experiment=czarnecki_mnist", "dataset=mnist_5k", "model.depth=5", "model.width=16", "trainer.max_steps=8",
              "interface.positions=[2]"]
    run_in_process([*common, "interface=bprop"], logs / "bprop")
    run_in_process([*common, "interface=cdni", "model.activation=tanh"], logs / "tanh_sg")
    run_in_process([*common, "interface=cdni"], logs / "sg")
    out = tmp_path / "results"
    result = script("make_czarnecki_mnist.py", ["--logs", str(logs), "--out-dir", str(out), "--probe-per-class", "3"])
    assert result.returncode == 0, result.stderr
    markdown = (out / "czarnecki_mnist.md").read_text()
    summary = json.loads((logs / "sg" / "summary.json").read_text())
    assert f"| relu | 4 | SG (relu, SG after layer 2) | {summary['test_error']:.1f} |" in markdown
    assert "in 0 of 1 pairs" in markdown or "in 1 of 1 pairs" in markdown  # one relu pair; tanh has no Bprop twin
    for png in ("curves", "rdms", "norms"):
        assert (out / f"czarnecki_mnist_{png}.png").stat().st_size > 5_000


def test_deep_mnist_report_without_runs_says_what_to_run(tmp_path):
    result = script("make_czarnecki_mnist.py", ["--logs", str(tmp_path / "none"), "--out-dir", str(tmp_path / "out")])
    assert result.returncode == 1 and "make czarnecki-mnist" in result.stderr
    assert not (tmp_path / "out").exists()


def test_interfaces_report_tables_every_method_and_depth(tmp_path):
    logs = tmp_path / "logs"
    for interface in ("bprop", "dfa", "kickback"):
        for seed in (0, 1):
            run_in_process(["experiment=czarnecki_interfaces", "dataset=mnist_5k", f"interface={interface}",
                            "model.depth=3", "model.width=16", f"seed={seed}"], logs / f"{interface}{seed}")
    result = script("make_ff_studies.py", ["czarnecki-interfaces", "--logs", str(logs), "--out-dir", str(tmp_path)])
    assert result.returncode == 0, result.stderr
    markdown = (tmp_path / "czarnecki_interfaces.md").read_text()
    errors = [json.loads((logs / f"dfa{seed}" / "summary.json").read_text())["test_error"] for seed in (0, 1)]
    mean = sum(errors) / 2
    assert "| layers | Bprop | DFA | Kickback | Bprop paper (2016 Table 1) |" in markdown
    assert f"{mean:.1f} ± " in markdown and "(n=2)" in markdown and "| 2.0 |" in markdown
    assert (tmp_path / "czarnecki_interfaces.png").stat().st_size > 5_000
