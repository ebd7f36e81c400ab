"""Fig. 8 with Networks A and B in processes of their own (execution=distributed, issue #16).

Rank 0 is Network A, with the digit stream and the SG model M of its message;
rank 1 is Network B. In every window A reads T digits, updates at once (from its
own loss, and with dni from sg_scale * M(m) on its message m), and sends the
detached message, with the window's count-of-3s label, to B without waiting. B
ticks once per window; every T windows it updates by truncated BPTT over them
and, with dni, sends back the true gradient of its losses for each message it
read: M's regression targets. A regresses M on them when they arrive, at most
`execution.max_staleness` update periods late (0: A waits for them at the end of
each period, as the one-process loop does, and the run is number for number the
same on CPU). e2e backpropagates through both networks in one graph and is not
split. Logs, evaluations and checkpoints fall on update periods, where all ranks meet.
"""
import math
import time
from collections import deque
from pathlib import Path

import torch
import torch.distributed as dist

from dni_repro.data.digit_stream import DigitStream
from dni_repro.execution.peer import Peer, Tag
from dni_repro.execution.process_group import Place
from dni_repro.experiments.multi_network import TEST_STREAM_SEED, build_system, load_digits
from dni_repro.experiments.workers import load_rank_state, start_workers, to_cpu
from dni_repro.models.multi_network import ReceiverB, SenderA
from dni_repro.runs.runtime import TerminationRequest, seed_everything
from dni_repro.runs.session import RunSession

PARTS = [["network_a"], ["network_b"]]  # what each rank runs, as recorded in the checkpoint


def run(cfg, run_dir: Path, resume: bool = False, job_label: str = "") -> dict:
    return start_workers(cfg, run_dir, resume, job_label, train)


def train(place: Place, cfg, run_dir: Path, device: torch.device, resume: bool, job_label: str) -> None:
    trainer_cfg, stream_cfg, execution = cfg.trainer, cfg.dataset.digit_stream, cfg.execution
    period, batch_size, units = stream_cfg.period, trainer_cfg.batch_size, cfg.model.width
    is_a = place.rank == 0
    seed_everything(cfg.seed)
    digits = load_digits(cfg.dataset, cfg.paths.data_dir).to(device)
    # Both ranks build the whole system from the run's seed, as one process does; each keeps its network.
    system, optimizer_a, optimizer_b, optimizer_sg = build_system(cfg, digits.train.inputs[0].numel(), device)
    if is_a:
        stream_seed = cfg.seed if cfg.seed is not None else torch.initial_seed()
        stream = DigitStream(digits.train.inputs, digits.train.labels, batch_size, period, stream_seed)
        sender = SenderA(system, optimizer_a, optimizer_sg, batch_size, device, cfg.interface.sg_scale,
                         cfg.interface.sg_loss_weight)
        peer = Peer(1, execution.timeout_s)
    else:
        receiver = ReceiverB(system, optimizer_b, batch_size, device)
        peer = Peer(0, execution.timeout_s)
    uses_sg = system.synthetic_gradient is not None
    staleness = execution.max_staleness

    session = RunSession(cfg, run_dir, device, resume, job_label) if is_a else None
    termination = session.termination if session is not None else TerminationRequest().install()
    running = {"loss": 0.0, "errors": 0.0, "windows": 0}  # this rank's network, since the last log line
    train_time, final_errors = 0.0, {}
    step, mine = load_rank_state(run_dir, place, PARTS) if resume else (0, None)
    if mine is not None:
        if is_a:
            system.network_a.load_state_dict(mine["network"])
            optimizer_a.load_state_dict(mine["optimizer"])
            if uses_sg:
                system.synthetic_gradient.load_state_dict(mine["synthetic_gradient"])
                optimizer_sg.load_state_dict(mine["optimizer_sg"])
            stream.load_state_dict(mine["stream"])
            sender.state = tuple(t.to(device) for t in mine["state"])
        else:
            system.network_b.load_state_dict(mine["network"])
            optimizer_b.load_state_dict(mine["optimizer"])
            receiver.state = tuple(t.to(device) for t in mine["state"])
        running, train_time, final_errors = mine["running"], mine["train_time_s"], mine["final_errors"]

    max_steps, update_period = trainer_cfg.max_steps, period * period
    periods_waiting = deque()  # A: update periods whose targets have not come back yet
    last_sg = None

    def regress_on_targets(lag: int) -> None:
        nonlocal last_sg
        while len(periods_waiting) > lag:
            periods_waiting.popleft()
            last_sg = sender.regress(peer.receive((period * batch_size, units), torch.float32, device, Tag.gradient))

    def drop_outstanding_targets() -> None:
        """Receive and drop the targets still owed to A: only when a SIGTERM stops a stale run (S > 0)
        between checkpoint periods, whose own targets are all collected."""
        while periods_waiting:
            periods_waiting.popleft()
            peer.receive((period * batch_size, units), torch.float32, device, Tag.gradient)
            del sender.sent[:period]

    def train_period() -> None:
        for _ in range(period):
            if is_a:
                images, odd, threes = stream.next_window()
                message, loss, errors = sender.train_window(images, odd)
                peer.send(message, Tag.activation)
                peer.send(threes, Tag.labels)
            else:
                message = peer.receive((batch_size, units), torch.float32, device, Tag.activation)
                threes = peer.receive((batch_size,), torch.long, device, Tag.labels)
                loss, errors = receiver.train_window(message, threes)
            # Summed on the device; read back (one sync) only when logged or saved.
            running["loss"] = running["loss"] + loss.double()
            running["errors"] = running["errors"] + errors.double()
            running["windows"] += 1
        if is_a:
            if uses_sg:
                periods_waiting.append(period)
                # A checkpoint's period collects every target, so that nothing is owed across a checkpoint.
                ends_at = step + update_period
                saves = ends_at % trainer_cfg.checkpoint_every == 0 or ends_at == max_steps
                regress_on_targets(0 if saves else staleness)
        else:
            targets = receiver.update()
            if targets is not None:
                peer.send(targets, Tag.gradient)

    @torch.no_grad()
    def test_error() -> float:
        """This rank's network's error over the same fresh test streams as the one-process loop uses."""
        test_stream = DigitStream(digits.test.inputs, digits.test.labels, trainer_cfg.eval_batch_size, period,
                                  TEST_STREAM_SEED)
        network = system.network_a if is_a else system.network_b
        network.eval()
        state = network.core.initial_state(trainer_cfg.eval_batch_size, device)
        wrong = 0
        for _ in range(stream_cfg.eval_length // period):
            images, odd, threes = test_stream.next_window()
            if is_a:
                logits, message, state = network(images, state)
                peer.send(message, Tag.activation)
                wrong = wrong + (logits.argmax(dim=1) != odd).sum()
            else:
                message = peer.receive((trainer_cfg.eval_batch_size, units), torch.float32, device, Tag.activation)
                logits, state = network(message, state)
                wrong = wrong + (logits.argmax(dim=1) != threes).sum()
        network.train()
        return float(wrong) / (stream_cfg.eval_length // period * trainer_cfg.eval_batch_size)

    def checkpoint() -> None:
        if is_a:
            drop_outstanding_targets()
        common = {"running": {key: float(value) for key, value in running.items()}, "train_time_s": train_time,
                  "final_errors": final_errors}
        if is_a:
            state = {"network": system.network_a.state_dict(), "optimizer": optimizer_a.state_dict(),
                     "synthetic_gradient": system.synthetic_gradient.state_dict() if uses_sg else None,
                     "optimizer_sg": optimizer_sg.state_dict() if uses_sg else None,
                     "stream": stream.state_dict(), "state": list(sender.state), **common}
        else:
            state = {"network": system.network_b.state_dict(), "optimizer": optimizer_b.state_dict(),
                     "state": list(receiver.state), **common}
        gathered = [None, None] if is_a else None
        dist.gather_object(to_cpu(state), gathered, dst=0)
        if session is not None:
            session.checkpoint(step, {"execution": {"workers": 2, "ranges": PARTS}, "ranks": gathered})

    status, stop = "failed", False
    try:
        system.train()
        while step < max_steps:
            if stop:
                checkpoint()
                break
            period_started = time.perf_counter()
            train_period()
            step += update_period
            train_time += time.perf_counter() - period_started

            last_step = step == max_steps
            log = step % trainer_cfg.log_every == 0 or last_step
            evaluate = step % trainer_cfg.eval_every == 0 or last_step
            if log or evaluate:
                local = {"stop": termination.requested, "wait_s": peer.receive_wait_s, "train_time_s": train_time}
                if log:
                    local.update({key: float(value) for key, value in running.items()})
                    running = {"loss": 0.0, "errors": 0.0, "windows": 0}
                    if last_sg is not None:
                        local["sg"] = [last_sg.loss.item(), last_sg.target_norm2.item(), last_sg.cosine.item()]
                if evaluate:
                    local["test_error"] = test_error()
                everyone = [None, None]
                dist.all_gather_object(everyone, local)
                a, b = everyone
                metrics = _merge(a, b, step, batch_size, log)
                if evaluate:
                    final_errors = {"test_a_error": a["test_error"], "test_b_error": b["test_error"]}
                if session is not None:
                    session.record.log(step, metrics)
                stop = a["stop"] or b["stop"]
                if not all(math.isfinite(value) for value in metrics.values()):
                    status = "diverged"
                    break
            if step % trainer_cfg.checkpoint_every == 0 or last_step:
                checkpoint()
        else:
            status = "completed"
        if is_a:
            drop_outstanding_targets()
        peer.flush()
    finally:
        if session is not None:
            session.finish(status, step, batch_size, {**final_errors, "train_time_s": train_time,
                                                      "execution": {"workers": 2, "max_staleness": staleness}})
        else:
            termination.restore()


def _merge(a: dict, b: dict, step: int, batch_size: int, logged: bool) -> dict:
    """One metrics line from A's and B's parts, in the keys and order of the one-process loop."""
    metrics = {}
    if logged:
        outputs = a["windows"] * batch_size
        metrics = {"samples": step * batch_size, "time/train_s": a["train_time_s"],
                   "train/a_loss": a["loss"] / a["windows"], "train/b_loss": b["loss"] / b["windows"],
                   "train/a_error": a["errors"] / outputs, "train/b_error": b["errors"] / outputs}
        if "sg" in a:
            metrics.update(zip(("train/sg_loss", "train/sg_target_norm2", "train/sg_cosine"), a["sg"]))
    if "test_error" in a:
        metrics.update({"test/a_error": a["test_error"], "test/b_error": b["test_error"]})
    metrics.update({"execution/wait_s_rank0": a["wait_s"], "execution/wait_s_rank1": b["wait_s"]})
    return metrics
