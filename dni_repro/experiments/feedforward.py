"""Feed-forward experiments (section 3.1, Table 1, Figs. 5, 9, 10, 12): one loop, top to bottom."""
import math
from pathlib import Path

import torch

from dni_repro.data import EpochSampler
from dni_repro.runs.session import RunSession
from dni_repro.experiments.feedforward_setup import build_network, load_training_data
from dni_repro.models.feedforward import DecoupledStack
from dni_repro.experiments.optim import StepDecaySchedule, build_optimizer
from dni_repro.experiments import sg_quality
from dni_repro.experiments.update_schedule import LayerUpdateSampler
from dni_repro.runs.runtime import seed_everything, select_device


@torch.no_grad()
def error_percent(net: DecoupledStack, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int) -> float:
    net.eval()
    wrong = torch.zeros((), dtype=torch.long, device=labels.device)
    for start in range(0, len(labels), batch_size):
        logits = net(inputs[start : start + batch_size])
        wrong += (logits.argmax(dim=1) != labels[start : start + batch_size]).sum()
    net.train()
    return 100.0 * wrong.item() / len(labels)


def run(cfg, run_dir: Path, resume: bool = False, job_label: str = "") -> dict:
    trainer = cfg.trainer
    device = select_device(cfg.device)
    seed_everything(cfg.seed)
    data = load_training_data(cfg, device)
    net = build_network(cfg.model, cfg.interface, data.input_shape, data.num_classes, trainer.batch_size).to(device)
    optimizer = build_optimizer(cfg.optimizer, net.parameters())
    # Unseeded runs (seed=null) shuffle from torch's own random initial seed.
    sampler_seed = cfg.seed if cfg.seed is not None else torch.initial_seed()
    sampler = EpochSampler(len(data.train), trainer.batch_size, sampler_seed, device)
    # Sparse updates / complete unlock: which layers run in each step (None: all of them).
    update_sampler = (
        LayerUpdateSampler(len(net.layers), cfg.interface.p_update, sampler_seed + 1)
        if cfg.interface.p_update < 1
        else None
    )

    session = RunSession(cfg, run_dir, device, resume, job_label)
    record, saved, step = session.record, session.saved, session.first_step
    if saved is not None:
        net.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        sampler.load_state_dict(saved["sampler"])
        if update_sampler is not None:
            update_sampler.load_state_dict(saved["update_sampler"])

    def checkpoint() -> None:
        session.checkpoint(step, {
            "model": net.state_dict(),
            "optimizer": optimizer.state_dict(),
            "sampler": sampler.state_dict(),
            "update_sampler": update_sampler.state_dict() if update_sampler is not None else None,
        })

    # A resumed run that had already finished keeps its last measured error.
    # Plain numbers for the loop: reading a DictConfig costs microseconds per access.
    max_steps, batch_size = trainer.max_steps, trainer.batch_size
    log_every, eval_every, checkpoint_every = trainer.log_every, trainer.eval_every, trainer.checkpoint_every
    quality_every = trainer.sg_quality_every
    schedule = StepDecaySchedule(cfg.optimizer, max_steps)

    status, test_error = "failed", record.last.get("test/error", float("nan"))
    val_error = record.last.get("val/error", float("nan"))
    # With complete unlock the classifier may be busy in a step; logs show its latest loss.
    train_loss = record.last.get("train/loss")
    try:
        net.train()
        while step < max_steps:
            if session.stop_requested:
                checkpoint()
                break
            lr = schedule.lr_at(step)
            for group in optimizer.param_groups:
                group["lr"] = lr

            indices = sampler.next_indices()
            inputs, labels = data.train.inputs[indices], data.train.labels[indices]
            measure_quality = quality_every > 0 and (step + 1) % quality_every == 0
            if measure_quality:
                true_gradients = sg_quality.true_boundary_gradients(net, inputs, labels)
                sg_quality.arm(net)
            # Set to None, not zero: the optimizer then leaves a layer that skipped its update untouched.
            optimizer.zero_grad(set_to_none=True)
            update_mask = update_sampler.draw() if update_sampler is not None else None
            loss, sg_loss = net.train_step(inputs, labels, update_mask)
            optimizer.step()
            step += 1
            if loss is not None:
                train_loss = loss  # read (a device sync) only when logged

            last_step = step == max_steps
            evaluate = step % eval_every == 0 or last_step
            if evaluate or measure_quality or step % log_every == 0:
                metrics = {"samples": step * batch_size, "lr": lr}
                if train_loss is not None:
                    metrics["train/loss"] = float(train_loss)
                if sg_loss is not None:
                    metrics["train/sg_loss"] = sg_loss.item()
                if measure_quality:
                    metrics.update(sg_quality.collect(net, true_gradients))
                if evaluate:
                    test_error = error_percent(net, data.test.inputs, data.test.labels, trainer.eval_batch_size)
                    metrics["test/error"] = test_error
                    if data.validation is not None:
                        val_error = error_percent(net, data.validation.inputs, data.validation.labels,
                                                       trainer.eval_batch_size)
                        metrics["val/error"] = val_error
                record.log(step, metrics)
                if not math.isfinite(metrics.get("train/loss", 0.0)):
                    status = "diverged"
                    break
            if step % checkpoint_every == 0 or last_step:
                checkpoint()
        else:
            status = "completed"
    finally:
        results = {"test_error": test_error}
        if data.validation is not None:
            results.update(val_error=val_error, validation={"examples": len(data.validation),
                                                            "seed": cfg.dataset.val_seed,
                                                            "train_examples": len(data.train)})
        outcome = session.finish(status, step, batch_size, results)
    return outcome
