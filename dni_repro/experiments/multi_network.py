"""Networks A and B on the digit stream (section 3.3, Fig. 8): one loop, top to bottom.

One step is one time step: every stream shows one more digit. The loop runs
one update period of T windows (T^2 steps) at a time, after which both networks
have updated in every regime, so logs, test evaluations and checkpoints fall on
multiples of T^2. The test errors of A and B are measured on the same fresh
test streams at every evaluation.
"""
import math
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from dni_repro.data import load_dataset
from dni_repro.data.digit_stream import DigitStream
from dni_repro.models.multi_network import MultiNetworkTrainer, TwoNetworkSystem, evaluate_errors
from dni_repro.runs.session import RunSession
from dni_repro.experiments.optim import build_optimizer
from dni_repro.runs.runtime import seed_everything, select_device

TEST_STREAM_SEED = 1234  # the test streams are the same in every run and at every evaluation

RUNNING_KEYS = ("a_loss", "b_loss", "a_errors", "b_errors", "windows")


def load_digits(dataset_cfg, data_dir: str):
    """The image dataset named by dataset.digit_stream.digits, read by the feed-forward loaders."""
    digits_cfg = OmegaConf.merge(dataset_cfg, {"name": dataset_cfg.digit_stream.digits})
    return load_dataset(digits_cfg, data_dir)


def build_system(cfg, image_size: int, device: torch.device):
    """Networks A and B (and with dni the SG model) from the run's seed, and one optimizer each:
    A, B and the SG model update at different times."""
    system = TwoNetworkSystem(
        cfg.interface.name,
        image_size=image_size,
        units=cfg.model.width,
        fcn_layers=cfg.model.depth,
        period=cfg.dataset.digit_stream.period,
        batch_norm=cfg.model.recurrent_batch_norm,
        sg_hidden_layers=cfg.interface.sg.hidden_layers,
        sg_hidden_width=cfg.interface.sg.hidden_width,
    ).to(device)
    optimizer_a = build_optimizer(cfg.optimizer, system.network_a.parameters())
    optimizer_b = build_optimizer(cfg.optimizer, system.network_b.parameters())
    optimizer_sg = (
        build_optimizer(cfg.optimizer, system.synthetic_gradient.parameters())
        if system.synthetic_gradient is not None
        else None
    )
    return system, optimizer_a, optimizer_b, optimizer_sg


def run(cfg, run_dir: Path, resume: bool = False, job_label: str = "") -> dict:
    trainer_cfg, stream_cfg = cfg.trainer, cfg.dataset.digit_stream
    period, batch_size = stream_cfg.period, trainer_cfg.batch_size
    device = select_device(cfg.device)
    seed_everything(cfg.seed)
    digits = load_digits(cfg.dataset, cfg.paths.data_dir).to(device)
    # Unseeded runs (seed=null) draw digits from torch's own random initial seed.
    stream_seed = cfg.seed if cfg.seed is not None else torch.initial_seed()
    stream = DigitStream(digits.train.inputs, digits.train.labels, batch_size, period, stream_seed)
    system, optimizer_a, optimizer_b, optimizer_sg = build_system(cfg, digits.train.inputs[0].numel(), device)
    trainer = MultiNetworkTrainer(system, optimizer_a, optimizer_b, optimizer_sg, period, batch_size, device,
                                  cfg.interface.sg_scale, cfg.interface.sg_loss_weight)
    running = dict.fromkeys(RUNNING_KEYS, 0.0)  # sums since the last log line

    session = RunSession(cfg, run_dir, device, resume, job_label)
    record, saved, step, train_time = session.record, session.saved, session.first_step, 0.0
    final_errors = {}
    if saved is not None:
        system.load_state_dict(saved["model"])
        optimizer_a.load_state_dict(saved["optimizer_a"])
        optimizer_b.load_state_dict(saved["optimizer_b"])
        if optimizer_sg is not None:
            optimizer_sg.load_state_dict(saved["optimizer_sg"])
        stream.load_state_dict(saved["stream"])
        trainer.load_state_dict(saved["networks_state"], device)
        running, train_time, final_errors = saved["running"], saved["train_time_s"], saved["final_errors"]

    def checkpoint() -> None:
        session.checkpoint(step, {
            "model": system.state_dict(),
            "optimizer_a": optimizer_a.state_dict(),
            "optimizer_b": optimizer_b.state_dict(),
            "optimizer_sg": optimizer_sg.state_dict() if optimizer_sg is not None else None,
            "stream": stream.state_dict(),
            "networks_state": trainer.state_dict(),
            "running": {key: float(value) for key, value in running.items()},
            "train_time_s": train_time,
            "final_errors": final_errors,
        })

    max_steps, update_period = trainer_cfg.max_steps, period * period
    status = "failed"
    try:
        system.train()
        while step < max_steps:
            if session.stop_requested:
                checkpoint()
                break
            period_started = time.perf_counter()
            for _ in range(period):
                images, odd, threes = stream.next_window()
                result = trainer.train_window(images, odd, threes)
                # Summed on the device; read back (one sync) only when logged or saved.
                for key in ("a_loss", "b_loss", "a_errors", "b_errors"):
                    running[key] = running[key] + getattr(result, key).double()
                running["windows"] += 1
            step += update_period
            train_time += time.perf_counter() - period_started

            last_step = step == max_steps
            metrics = {}
            if step % trainer_cfg.log_every == 0 or last_step:
                sums = {key: float(value) for key, value in running.items()}
                outputs = sums["windows"] * batch_size
                metrics = {
                    "samples": step * batch_size,  # digits seen, all streams together
                    "time/train_s": train_time,
                    "train/a_loss": sums["a_loss"] / sums["windows"],
                    "train/b_loss": sums["b_loss"] / sums["windows"],
                    "train/a_error": sums["a_errors"] / outputs,
                    "train/b_error": sums["b_errors"] / outputs,
                }
                if result.sg_loss is not None:
                    metrics["train/sg_loss"] = result.sg_loss.item()
                    metrics["train/sg_target_norm2"] = result.sg_target_norm2.item()
                    metrics["train/sg_cosine"] = result.sg_cosine.item()
                running = dict.fromkeys(RUNNING_KEYS, 0.0)
            if step % trainer_cfg.eval_every == 0 or last_step:
                test_stream = DigitStream(digits.test.inputs, digits.test.labels, trainer_cfg.eval_batch_size,
                                          period, TEST_STREAM_SEED)
                a_error, b_error = evaluate_errors(system, test_stream, stream_cfg.eval_length // period, device)
                metrics.update({"test/a_error": a_error, "test/b_error": b_error})
                final_errors = {"test_a_error": a_error, "test_b_error": b_error}
            if metrics:
                record.log(step, metrics)
                if not all(math.isfinite(value) for value in metrics.values()):
                    status = "diverged"
                    break
            if step % trainer_cfg.checkpoint_every == 0 or last_step:
                checkpoint()
        else:
            status = "completed"
    finally:
        outcome = session.finish(status, step, batch_size, {
            **final_errors,
            "train_time_s": train_time,
        })
    return outcome
