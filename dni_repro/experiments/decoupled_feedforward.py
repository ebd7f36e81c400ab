"""Feed-forward training with the layer groups as concurrent workers (execution=distributed, issue #16).

The stack is cut into K contiguous groups at decoupled boundaries, one per
worker (a rank of torch.distributed). In one step worker k

1. takes the batch (worker 0) or receives the activation and labels from worker k-1;
2. runs its layers; the DNI on its top boundary gives their synthetic gradient
   at once, so their backward pass runs now;
3. sends the activation on to worker k+1 and the gradient that reached its own
   input back to worker k-1, as that worker's bootstrapped target;
4. regresses its DNI on targets that have come back from worker k+1, letting
   the newest lag by up to `execution.max_staleness` steps (0: it waits, lock-step);
5. updates its own parameters with its own optimizer.

With S=0 on CPU the run computes what execution=local computes, number for
number. Bprop becomes pipelined backprop (GPipe): a step's micro-batches flow
up, their gradients flow down, and every worker waits for them.

Every worker builds the whole network from the run's seed and keeps its group,
so the initial weights are those of a local run. Rank 0 owns the run folder:
one metrics.jsonl, one summary.json, one W&B run, and one checkpoint holding
every rank's state. Logging, evaluation and checkpoints are points where all
ranks meet; a checkpoint's step collects every outstanding target first.
"""
import math
from collections import deque
from pathlib import Path

import torch
import torch.distributed as dist

from dni_repro.data import EpochSampler
from dni_repro.dni import BackpropInterface, GradientMessage
from dni_repro.execution.peer import Peer, Tag
from dni_repro.execution.process_group import Place
from dni_repro.execution.split import balanced_split, check_split
from dni_repro.experiments.workers import load_rank_state, start_workers, to_cpu
from dni_repro.experiments.feedforward_setup import build_network, load_training_data, output_shapes
from dni_repro.experiments.optim import StepDecaySchedule, build_optimizer
from dni_repro.models.feedforward import DecoupledStack
from dni_repro.models.pipeline_stage import PipelineStage
from dni_repro.names import InterfaceName
from dni_repro.runs.runtime import TerminationRequest, restore_rng_state, rng_state, seed_everything
from dni_repro.runs.session import RunSession


def layer_ranges(net: DecoupledStack, cfg) -> list[tuple[int, int]]:
    """Each worker's [first, last) layers: the user's `execution.split`, or balanced by parameter count
    (a layer counts with the SG model on its top boundary, which runs with it)."""
    pipelined = cfg.interface.name == InterfaceName.bprop
    # Any boundary that is not a Bprop link: a DNI, or a cut (No Bprop), across which nothing waits.
    cuttable = [b for b in range(1, len(net.layers))
                if pipelined or not isinstance(net.interfaces[b - 1], BackpropInterface)]
    if cfg.execution.split is not None:
        return check_split(list(cfg.execution.split), len(net.layers), cuttable)
    costs = [sum(p.numel() for p in layer.parameters()) for layer in net.layers]
    for index, interface in enumerate(net.interfaces):
        costs[index] += sum(p.numel() for p in interface.parameters())
    return balanced_split(costs, cfg.execution.workers, cuttable)


def run(cfg, run_dir: Path, resume: bool = False, job_label: str = "") -> dict:
    """Start the workers (or, under torchrun, be one of them) and return the run's summary."""
    net = build_network(cfg.model, cfg.interface, tuple(cfg.dataset.input_shape), cfg.dataset.num_classes,
                        cfg.trainer.batch_size)
    layer_ranges(net, cfg)  # a bad split fails here, before any process starts
    return start_workers(cfg, run_dir, resume, job_label, train)


def train(place: Place, cfg, run_dir: Path, device: torch.device, resume: bool, job_label: str) -> None:
    trainer, execution = cfg.trainer, cfg.execution
    seed_everything(cfg.seed)
    data = load_training_data(cfg, device)
    # The whole network from the run's seed, as a local run builds it; this worker keeps its layers.
    net = build_network(cfg.model, cfg.interface, data.input_shape, data.num_classes, trainer.batch_size)
    ranges = layer_ranges(net, cfg)
    first, last = ranges[place.rank]
    # The shape of one example of this worker's input.
    in_shape = ([tuple(data.input_shape)] + output_shapes(list(net.layers), tuple(data.input_shape)))[first]
    stage = PipelineStage(net, first, last).to(device)
    # Whether the interface below this worker's input (on the previous worker) wants its gradient back.
    input_wants_target = first > 0 and net.interfaces[first - 1].wants_target
    top_wants_target = stage.top_interface is not None and stage.top_interface.wants_target
    del net
    optimizer = build_optimizer(cfg.optimizer, stage.parameters())
    sampler_seed = cfg.seed if cfg.seed is not None else torch.initial_seed()
    sampler = EpochSampler(len(data.train), trainer.batch_size, sampler_seed, device) if place.is_first else None
    below = None if place.is_first else Peer(place.rank - 1, execution.timeout_s)
    above = None if place.is_last else Peer(place.rank + 1, execution.timeout_s)
    pipelined = cfg.interface.name == InterfaceName.bprop
    staleness = execution.max_staleness
    target_is_bootstrapped = place.rank + 1 < place.world_size - 1  # the last worker sends true gradients

    session = RunSession(cfg, run_dir, device, resume, job_label) if place.is_first else None
    termination = TerminationRequest().install() if session is None else session.termination
    parts = [list(r) for r in ranges]
    step, mine = load_rank_state(run_dir, place, parts) if resume else (0, None)
    if mine is not None:
        restore_rng_state(mine["rng"], device)
        stage.load_state_dict(mine["stage"])
        optimizer.load_state_dict(mine["optimizer"])
        if sampler is not None:
            sampler.load_state_dict(mine["sampler"])

    # The top DNI's sent messages whose targets have not come back yet, oldest first.
    waiting: deque = deque()

    def regress_top(blocking_lag: int) -> list[torch.Tensor]:
        """Collect targets from the worker above until at most `blocking_lag` are outstanding."""
        losses = []
        while len(waiting) > blocking_lag:
            sent = waiting.popleft()
            target = GradientMessage(above.receive(sent.activation.shape, torch.float32, device, Tag.gradient),
                                     target_is_bootstrapped)
            if staleness == 0:  # the prediction was kept with its graph, as in a local run
                losses.append(stage.top_interface.receive(target))
            else:  # the SG model has stepped since: regress its current weights
                losses.append(stage.top_interface.regress(sent, target))
        return losses

    def decoupled_step(inputs, labels):
        step_result = stage.train_forward(inputs, labels, input_wants_target=input_wants_target,
                                          keep_top_prediction=staleness == 0)
        if above is not None:
            above.send(step_result.message.activation, Tag.activation)
            above.send(labels, Tag.labels)
        if input_wants_target:
            below.send(step_result.inputs.grad, Tag.gradient)
        sg_losses = list(step_result.sg_losses)
        if top_wants_target:
            waiting.append(step_result.message)
            # A checkpoint's step collects every target, so that nothing is owed across a checkpoint.
            next_step = step + 1
            saves = next_step % trainer.checkpoint_every == 0 or next_step == trainer.max_steps
            sg_losses += regress_top(0 if saves else staleness)
        return step_result.loss, sg_losses

    def pipelined_step(inputs, labels):
        """GPipe over micro-batches: all forwards up, then all gradients down, each micro-batch in turn."""
        sizes = [len(part) for part in torch.arange(trainer.batch_size).tensor_split(execution.micro_batches)]
        pending, losses, start = [], [], 0
        for size in sizes:
            if place.is_first:
                x, y = inputs[start:start + size], labels[start:start + size]
                start += size
            else:
                x = below.receive((size, *in_shape), torch.float32, device, Tag.activation)
                y = below.receive((size,), torch.long, device, Tag.labels)
            part = stage.train_forward(x, y, input_wants_target=not place.is_first,
                                       loss_scale=size / trainer.batch_size)
            if above is None:
                losses.append(part.loss)
                if below is not None:
                    below.send(part.inputs.grad, Tag.gradient)
            else:
                above.send(part.message.activation, Tag.activation)
                above.send(y, Tag.labels)
                pending.append(part)
        for part in pending:
            part.message.activation.backward(
                above.receive(part.message.activation.shape, torch.float32, device, Tag.gradient))
            if below is not None:
                below.send(part.inputs.grad, Tag.gradient)
        return (torch.stack(losses).sum() if losses else None), []

    @torch.no_grad()
    def error_percent(split):
        """The whole network's test (or validation) error through the pipeline, in percent, on the last rank (None elsewhere)."""
        stage.eval()
        wrong = torch.zeros((), dtype=torch.long, device=device)
        for start in range(0, len(split.labels), trainer.eval_batch_size):
            size = min(trainer.eval_batch_size, len(split.labels) - start)
            x = split.inputs[start:start + size] if place.is_first else below.receive(
                (size, *in_shape), torch.float32, device, Tag.activation)
            output = stage(x)
            if above is not None:
                above.send(output, Tag.activation)
            else:
                wrong += (output.argmax(dim=1) != split.labels[start:start + size]).sum()
        stage.train()
        return 100.0 * wrong.item() / len(split.labels) if above is None else None

    def drop_outstanding_targets() -> None:
        """Receive and drop the up-to-S targets still owed to this worker: only when a SIGTERM stops the
        run between checkpoint steps (whose own targets are all collected), so a stale run stopped that
        way loses up to S regressions."""
        while waiting:
            sent = waiting.popleft()
            above.receive(sent.activation.shape, torch.float32, device, Tag.gradient)

    def checkpoint() -> None:
        drop_outstanding_targets()
        state = to_cpu({"stage": stage.state_dict(), "optimizer": optimizer.state_dict(),
                      "sampler": sampler.state_dict() if sampler is not None else None, "rng": rng_state(device)})
        gathered = [None] * place.world_size if place.is_first else None
        dist.gather_object(state, gathered, dst=0)
        if session is not None:
            session.checkpoint(step, {"execution": {"workers": place.world_size, "ranges": parts},
                                      "ranks": gathered})

    max_steps, batch_size = trainer.max_steps, trainer.batch_size
    schedule = StepDecaySchedule(cfg.optimizer, max_steps)
    record = session.record if session is not None else None
    status = "failed"
    test_error = record.last.get("test/error", float("nan")) if record is not None else float("nan")
    val_error = record.last.get("val/error", float("nan")) if record is not None else float("nan")
    try:
        stage.train()
        stop = False
        while step < max_steps:
            if stop:
                checkpoint()
                break
            lr = schedule.lr_at(step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if place.is_first:
                indices = sampler.next_indices()
                inputs, labels = data.train.inputs[indices], data.train.labels[indices]
            elif pipelined:
                inputs = labels = None  # received per micro-batch
            else:
                inputs = below.receive((batch_size, *in_shape), torch.float32, device, Tag.activation)
                labels = below.receive((batch_size,), torch.long, device, Tag.labels)
            optimizer.zero_grad(set_to_none=True)
            loss, sg_losses = pipelined_step(inputs, labels) if pipelined else decoupled_step(inputs, labels)
            optimizer.step()
            step += 1

            last_step = step == max_steps
            evaluate = step % trainer.eval_every == 0 or last_step
            if evaluate or step % trainer.log_every == 0:
                local = {"loss": float(loss) if loss is not None else None,
                         "sg_losses": [float(value) for value in sg_losses], "stop": termination.requested,
                         "wait_s": (below.receive_wait_s if below else 0.0) + (above.receive_wait_s if above else 0.0)}
                if evaluate:
                    local["test/error"] = error_percent(data.test)
                    if data.validation is not None:
                        local["val/error"] = error_percent(data.validation)
                everyone = [None] * place.world_size
                dist.all_gather_object(everyone, local)
                metrics = _merge(everyone, step, batch_size, lr)
                test_error = metrics.get("test/error", test_error)
                val_error = metrics.get("val/error", val_error)
                if record is not None:
                    record.log(step, metrics)
                stop = any(entry["stop"] for entry in everyone)
                if not math.isfinite(metrics.get("train/loss", 0.0)):
                    status = "diverged"
                    break
            if step % trainer.checkpoint_every == 0 or last_step:
                checkpoint()
        else:
            status = "completed"
        drop_outstanding_targets()  # every message sent to this worker is received before it leaves
        for peer in (below, above):
            if peer is not None:
                peer.flush()
    finally:
        if session is not None:
            results = {"test_error": test_error,
                       "execution": {"workers": place.world_size, "ranges": parts,
                                     "max_staleness": staleness, "pipelined_bprop": pipelined,
                                     "micro_batches": execution.micro_batches if pipelined else None}}
            if data.validation is not None:
                results.update(val_error=val_error)
            session.finish(status, step, batch_size, results)
        else:
            termination.restore()


def _merge(everyone: list[dict], step: int, batch_size: int, lr: float) -> dict:
    """One metrics line from every rank's part, in the keys and the order of summation a local run uses."""
    metrics = {"samples": step * batch_size, "lr": lr}
    last = everyone[-1]
    if last["loss"] is not None:
        metrics["train/loss"] = last["loss"]
    sg_losses = [value for entry in everyone for value in entry["sg_losses"]]
    if sg_losses:
        metrics["train/sg_loss"] = torch.tensor(sg_losses, dtype=torch.float32).sum().item()
    for key in ("test/error", "val/error"):
        if key in last:
            metrics[key] = last[key]
    for rank, entry in enumerate(everyone):
        metrics[f"execution/wait_s_rank{rank}"] = entry["wait_s"]
    return metrics
