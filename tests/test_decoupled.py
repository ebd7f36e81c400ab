"""execution=distributed (issue #16): DNI-separated layer groups as torch.distributed workers.

Workers are forked from a fork server (gloo, 1 thread each, a file rendezvous, short timeouts):
the first distributed run of a test process pays for the server's imports, later ones start in
well under a second.
"""
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from dni_repro.dni import DNI, GradientMessage, MLPSyntheticGradient
from dni_repro.errors import ConfigError, WorkerFailed
from dni_repro.execution.peer import Peer, Tag
from dni_repro.execution.process_group import Place, join, leave
from dni_repro.execution.spawn import run_workers
from dni_repro.models.feedforward import DecoupledStack, fcn_layers
from dni_repro.models.pipeline_stage import PipelineStage
from dni_repro.runs.checkpoint import load_checkpoint
from tests.conftest import run_in_process, run_script

SMALL = ["model.width=16", "model.sg_width=16", "trainer.max_steps=6", "trainer.eval_every=3", "trainer.log_every=1",
         "trainer.checkpoint_every=3", "trainer.eval_batch_size=256"]
DISTRIBUTED = ["execution=distributed", "execution.timeout_s=20"]


def metrics_lines(run_dir: Path) -> list[dict]:
    """Every metric line, without the distributed run's own timing keys."""
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if not k.startswith("execution/")} for line in lines]


def run_locally(overrides: list[str], run_dir: Path) -> dict:
    """A local run at one thread, as each worker runs: thread counts can change the last bits of a matmul."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_in_process(overrides, run_dir)
    finally:
        torch.set_num_threads(threads)


def stage_weights_as_local(checkpoint: dict) -> dict:
    """Every rank's stage weights under the names the whole stack gives them in a local run."""
    weights = {}
    for (first, _), rank_state in zip(checkpoint["execution"]["ranges"], checkpoint["ranks"]):
        for name, tensor in rank_state["stage"].items():
            group, index, rest = name.split(".", 2)
            weights[f"{group}.{int(index) + first}.{rest}"] = tensor
    return weights


@pytest.mark.parametrize("interface,depth", [("dni", 3), ("dni", 4), ("cdni", 3), ("cdni", 4), ("bprop", 4),
                                             ("no_bprop", 3)])
def test_lock_step_distributed_run_equals_the_local_run(interface, depth, tmp_path):
    run = [f"interface={interface}", f"model.depth={depth}", *SMALL]
    local = run_locally(run, tmp_path / "local")
    # Bprop over one micro-batch is plain model-parallel backprop: the same arithmetic as one process.
    distributed = run_in_process([*run, *DISTRIBUTED, "execution.micro_batches=1"], tmp_path / "distributed")
    assert distributed["status"] == local["status"] == "completed"
    assert metrics_lines(tmp_path / "distributed") == metrics_lines(tmp_path / "local")
    assert distributed["test_error"] == local["test_error"]
    assert len(distributed["execution"]["ranges"]) == 2
    local_weights = load_checkpoint(tmp_path / "local")["model"]
    distributed_weights = stage_weights_as_local(load_checkpoint(tmp_path / "distributed"))
    assert distributed_weights.keys() == local_weights.keys()
    assert all(torch.equal(distributed_weights[name], local_weights[name]) for name in local_weights)


def test_stale_targets_change_the_run_but_not_what_it_reaches(tmp_path):
    run = ["interface=cdni", "model.depth=4", *SMALL, "trainer.max_steps=12", "trainer.eval_every=12"]
    lock_step = run_in_process([*run, *DISTRIBUTED], tmp_path / "s0")
    stale = run_in_process([*run, *DISTRIBUTED, "execution.max_staleness=2"], tmp_path / "s2")
    assert stale["status"] == "completed" and stale["execution"]["max_staleness"] == 2
    assert metrics_lines(tmp_path / "s2") != metrics_lines(tmp_path / "s0")
    assert abs(stale["test_error"] - lock_step["test_error"]) < 10


def _exchange_one_batch(place: Place, out_dir: str, init_method: str) -> None:
    """Two stages of one seeded 3-layer stack: worker 1 sends back the gradient at its input,
    worker 0's DNI records the target it receives; both save what they saw."""
    join(place, torch.device("cpu"), 20.0, init_method)
    try:
        torch.manual_seed(0)
        layers = fcn_layers((5,), 3, depth=3, width=6)
        interfaces = [DNI(MLPSyntheticGradient(6, 1, 6)) for _ in range(2)]
        for interface in interfaces:  # a zero-initialised SG model would make every target zero
            nn.init.normal_(interface.sg_model.output.weight)
        stack = DecoupledStack(layers, interfaces, 3)
        inputs, labels = torch.randn(4, 5), torch.tensor([0, 1, 2, 1])
        if place.rank == 0:
            stage, above = PipelineStage(stack, 0, 1), Peer(1, 20.0)
            step = stage.train_forward(inputs, labels, input_wants_target=False)
            above.send(step.message.activation, Tag.activation)
            stage.top_interface.probe = {}
            target = above.receive((4, 6), torch.float32, torch.device("cpu"), Tag.gradient)
            stage.top_interface.receive(GradientMessage(target, bootstrapped=True))
            torch.save(stage.top_interface.probe["target"], Path(out_dir) / "received.pt")
            above.flush()
        else:
            stage, below = PipelineStage(stack, 1, 3), Peer(0, 20.0)
            activation = below.receive((4, 6), torch.float32, torch.device("cpu"), Tag.activation)
            step = stage.train_forward(activation, labels, input_wants_target=True)
            below.send(step.inputs.grad, Tag.gradient)
            torch.save(step.inputs.grad, Path(out_dir) / "sent.pt")
            below.flush()
    finally:
        leave()


def test_the_target_a_worker_receives_is_the_input_gradient_the_next_worker_computed(tmp_path):
    run_workers(_exchange_one_batch, 2, (str(tmp_path), f"file://{tmp_path / 'rendezvous'}"))
    sent, received = torch.load(tmp_path / "sent.pt"), torch.load(tmp_path / "received.pt")
    assert sent.abs().sum() > 0
    assert torch.equal(sent, received)


def worker_pids(parent: int) -> list[int]:
    """The training workers under `parent`: the children of its fork server, oldest (rank 0) first."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry.name))
            except (OSError, IndexError):
                pass
    servers = [pid for pid in children.get(parent, [])
               if b"forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    return sorted(pid for server in servers for pid in children.get(server, []))


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


LONG_RUN = ["model.width=16", "model.sg_width=16", "model.depth=3", "interface=dni", "trainer.max_steps=100000",
            "trainer.checkpoint_every=20", "trainer.log_every=20", "trainer.eval_every=100000"]


class RankKiller(threading.Thread):
    """Once the run's first checkpoint exists, SIGKILL worker `rank` of the job under `parent`."""

    def __init__(self, run_dir: Path, parent: int, rank: int):
        super().__init__()
        self.run_dir, self.parent, self.rank, self.workers = run_dir, parent, rank, []

    def run(self) -> None:
        deadline = time.time() + 60
        while time.time() < deadline and not (self.run_dir / "checkpoint.pt").exists():
            time.sleep(0.01)
        self.workers = worker_pids(self.parent)
        if len(self.workers) == 2:
            os.kill(self.workers[self.rank], signal.SIGKILL)


def test_killing_one_worker_ends_the_job_within_the_timeout_and_leaves_no_orphans(tmp_path):
    killer = RankKiller(tmp_path, os.getpid(), rank=1)
    killer.start()
    started = time.time()
    with pytest.raises(WorkerFailed) as failure:
        run_in_process([*LONG_RUN, *DISTRIBUTED], tmp_path)
    killer.join()
    assert len(killer.workers) == 2
    assert time.time() - started < 20  # execution.timeout_s
    assert failure.value.exit_status != 0
    assert "worker rank 1 was killed by SIGKILL; the job is stopped; the last checkpoint (step" in failure.value.message
    summary = tmp_path / "summary.json"
    assert not summary.exists() or json.loads(summary.read_text())["status"] != "completed"
    deadline = time.time() + 10
    while any(alive(pid) for pid in killer.workers) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in killer.workers)


def test_train_py_reports_a_failed_worker_in_one_line_with_a_non_zero_exit(tmp_path, monkeypatch):
    import dni_repro.launch

    def failing_job(*args, **kwargs):
        raise WorkerFailed("worker rank 1 was killed by SIGKILL; the job is stopped", 1)

    monkeypatch.setattr(dni_repro.launch, "run_job", failing_job)
    result = run_script("../train.py", ["logger=none", *DISTRIBUTED, f"hydra.run.dir={tmp_path}"])
    assert result.returncode == 1
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        "error: worker rank 1 was killed by SIGKILL; the job is stopped"]


def test_a_distributed_run_killed_and_resumed_ends_like_one_left_alone(tmp_path):
    run = [*LONG_RUN, "trainer.max_steps=60", "trainer.eval_every=20"]
    uninterrupted = run_locally(run, tmp_path / "whole")  # lock-step equals local, and a local run is cheaper
    killer = RankKiller(tmp_path / "killed", os.getpid(), rank=0)
    killer.start()
    with pytest.raises(WorkerFailed, match="worker rank 0 was killed by SIGKILL"):
        run_in_process([*run, *DISTRIBUTED], tmp_path / "killed")
    killer.join()
    if (tmp_path / "killed" / "summary.json").exists():
        pytest.skip("the run finished before it could be killed")
    assert load_checkpoint(tmp_path / "killed")["step"] < 60
    resumed = run_in_process([], tmp_path / "killed", resume=True)
    assert resumed["status"] == "completed" and resumed["test_error"] == uninterrupted["test_error"]
    assert metrics_lines(tmp_path / "killed") == metrics_lines(tmp_path / "whole")


@pytest.mark.parametrize("overrides,message", [
    (["model.depth=3", "execution.workers=4"], "needs 3 decoupled boundaries"),
    (["model.depth=4", "execution.split=[2,1]"], "must give each worker at least one layer and cover all 4"),
    (["model.depth=4", "interface.positions=[2]", "execution.split=[1,3]"], "no decoupled interface"),
])
def test_an_impossible_split_fails_before_any_worker_starts(overrides, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        run_in_process(["interface=dni", *overrides, *DISTRIBUTED], tmp_path)
    assert not (tmp_path / "metrics.jsonl").exists()


@pytest.mark.parametrize("overrides,message", [
    (["interface=dfa"], "interface=dfa cannot be split"),
    (["interface=dni", "interface.p_update=0.5"], "interface.p_update=1"),
    (["dataset=copy", "model=lstm", "interface=bptt"], "use execution=local"),
    (["interface=dni", "execution.split=[1,1,2]"], "one layer count per worker"),
])
def test_what_cannot_be_distributed_is_refused_in_one_line(overrides, message, tmp_path):
    from dni_repro.config import compose_train_config, validate

    with pytest.raises(ConfigError, match=message):
        validate(compose_train_config([*overrides, *DISTRIBUTED]))


@pytest.mark.parametrize("interface", ["dni", "decoupled_no_dni"])
def test_fig8_with_a_and_b_in_two_processes_equals_the_one_process_run(interface, tmp_path):
    run = ["experiment=fig8", f"interface={interface}"]
    local = run_locally(run, tmp_path / "local")
    distributed = run_in_process([*run, *DISTRIBUTED], tmp_path / "distributed")

    def comparable(run_dir):  # the training clock is the one key that may differ
        return [{k: v for k, v in line.items() if not k.startswith("time/")} for line in metrics_lines(run_dir)]

    assert distributed["status"] == "completed"
    assert comparable(tmp_path / "distributed") == comparable(tmp_path / "local")
    assert (distributed["test_a_error"], distributed["test_b_error"]) == (local["test_a_error"], local["test_b_error"])
    saved = load_checkpoint(tmp_path / "distributed")["ranks"]
    local_model = load_checkpoint(tmp_path / "local")["model"]
    assert all(torch.equal(tensor, local_model[f"network_b.{name}"]) for name, tensor in saved[1]["network"].items())


def test_fig8_end_to_end_cannot_be_split():
    from dni_repro.config import compose_train_config, validate

    with pytest.raises(ConfigError, match="interface=e2e backpropagates through both networks"):
        validate(compose_train_config(["experiment=fig8", "interface=e2e", *DISTRIBUTED]))


def test_every_torchrun_rank_names_the_same_run_folder(monkeypatch):
    from dni_repro.config import RUN_ID_VARIABLE, _run_id

    monkeypatch.delenv(RUN_ID_VARIABLE, raising=False)
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "0b5e")  # torchrun --standalone sets a uuid, the same in every rank
    assert _run_id() == "torchrun_0b5e"
    monkeypatch.delenv(RUN_ID_VARIABLE)
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")  # no rendezvous id: a fresh stamp, as without torchrun
    assert _run_id().count("_") == 2


def test_the_failure_line_blames_the_killed_worker_or_the_one_that_hung():
    from types import SimpleNamespace

    from dni_repro.execution.spawn import PEER_LOST_STATUS, _failure_message

    def workers(*exitcodes):
        return [SimpleNamespace(exitcode=code) for code in exitcodes]

    # kill -9 of rank 1; rank 0 saw the closed connection (or has not noticed yet).
    assert _failure_message(workers(PEER_LOST_STATUS, -signal.SIGKILL)) == (
        "worker rank 1 was killed by SIGKILL; the job is stopped", 1)
    assert _failure_message(workers(None, -signal.SIGKILL))[0].startswith("worker rank 1 was killed")
    # rank 1 stopped responding (SIGSTOP, a deadlock): rank 0's wait timed out while rank 1 still runs.
    assert _failure_message(workers(PEER_LOST_STATUS, None)) == (
        "worker rank 0 timed out waiting for worker rank 1, which stopped responding; the job is stopped", 1)
    # bad input or divergence in a worker: it has printed its own line; the job keeps its exit status.
    assert _failure_message(workers(0, 3)) == ("", 3)
