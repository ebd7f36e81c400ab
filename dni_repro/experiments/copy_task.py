"""Copy and Repeat Copy with a curriculum (section 3.2, Table 2, Figs. 7 left and 15): one loop, top to bottom.

One training step is one truncated-BPTT chunk of T time steps on B streams.
The result is the largest episode length T_task the model solved.
"""
import math
import time
from pathlib import Path

import torch

from dni_repro.data.copy_tasks import CopyTaskStream, CopyVocabulary, Curriculum, Level
from dni_repro.models.recurrent import StreamState, divergence
from dni_repro.experiments.recurrent_setup import AlignmentWindow, build_recurrent_network, build_recurrent_optimizer
from dni_repro.runs.session import RunSession
from dni_repro.runs.runtime import seed_everything, select_device


def run(cfg, run_dir: Path, resume: bool = False, job_label: str = "") -> dict:
    trainer, task = cfg.trainer, cfg.dataset.copy_task
    device = select_device(cfg.device)
    seed_everything(cfg.seed)
    vocab = CopyVocabulary(task.alphabet, task.max_repeats)
    start = Level(task.start_length, task.start_repeats if task.repeat else 1, task.repeat)
    curriculum = Curriculum(start, task.threshold_bits, task.window_steps, task.max_repeats)
    # Unseeded runs (seed=null) draw episodes from torch's own random initial seed.
    stream_seed = cfg.seed if cfg.seed is not None else torch.initial_seed()
    stream = CopyTaskStream(vocab, start, trainer.batch_size, stream_seed, device)
    net = build_recurrent_network(cfg, vocab.input_size, vocab.output_size).to(device)
    optimizer = build_recurrent_optimizer(cfg, net)
    alignment = AlignmentWindow(trainer.grad_alignment_chunks)
    state = net.initial_state(trainer.batch_size, device)

    session = RunSession(cfg, run_dir, device, resume, job_label)
    record, saved, step, train_time = session.record, session.saved, session.first_step, 0.0
    if saved is not None:
        net.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        stream.load_state_dict(saved["stream"])
        curriculum.load_state_dict(saved["curriculum"])
        state = StreamState.from_state_dict(saved["stream_state"], device)
        alignment.load_state_dict(saved["alignment"], device)
        train_time = saved["train_time_s"]

    def checkpoint() -> None:
        session.checkpoint(step, {
            "model": net.state_dict(),
            "optimizer": optimizer.state_dict(),
            "stream": stream.state_dict(),
            "stream_state": state.state_dict(),
            "alignment": alignment.state_dict(),
            "curriculum": curriculum.state_dict(),
            "train_time_s": train_time,
            **({"diverged_because": diverged_because} if diverged_because else {}),
        })

    max_steps, batch_size, unroll = trainer.max_steps, trainer.batch_size, trainer.bptt_length
    log_every, checkpoint_every = trainer.log_every, trainer.checkpoint_every
    alignment_every = trainer.grad_alignment_every
    # An episode ends at its STOP output, the only step with that target.
    reset_at_episode_ends = cfg.interface.sg_episode_reset
    status, diverged_because = "failed", ""
    try:
        net.train()
        while step < max_steps:
            if session.stop_requested:
                checkpoint()
                break
            step_started = time.perf_counter()
            inputs, targets, weights = stream.next_chunk(unroll)
            alignment.push(inputs, targets, weights, state)
            optimizer.zero_grad(set_to_none=True)
            episode_ends = targets == vocab.stop_out if reset_at_episode_ends else None
            result, state = net.train_chunk(inputs, targets, weights, state, episode_ends)
            optimizer.step()
            step += 1
            # The curriculum needs this step's error now: one device sync per step.
            loss_sum, count = result.loss_sum.item(), result.loss_count.item()
            train_time += time.perf_counter() - step_started
            if curriculum.record(loss_sum, count):
                stream.level = curriculum.level

            last_step = step == max_steps
            align = alignment_every > 0 and step % alignment_every == 0
            if step % log_every == 0 or last_step or align:
                bits = curriculum.running_bits()
                metrics = {
                    "samples": step * batch_size * unroll,  # time steps consumed, all streams together
                    "time/train_s": train_time,
                    "train/bits": loss_sum / count / math.log(2) if count else float("nan"),
                    "curriculum/solved_task_length": curriculum.solved_task_length,
                    "curriculum/task_length": curriculum.level.task_length,
                    "curriculum/N": curriculum.level.length,
                    "curriculum/R": curriculum.level.repeats,
                }
                if math.isfinite(bits):
                    metrics["curriculum/running_bits"] = bits
                metrics.update(result.cell_metrics())
                metrics.update(result.sg_metrics())
                if align:
                    metrics.update(alignment.measure(net))
                record.log(step, metrics)
                diverged_because = divergence(loss_sum, metrics)
                if diverged_because:
                    status = "diverged"
                    break
            if step % checkpoint_every == 0 or last_step:
                checkpoint()
        else:
            status = "completed"
    finally:
        outcome = session.finish(status, step, batch_size * unroll, {
            "max_task_length_solved": curriculum.solved_task_length,
            "level": {"N": curriculum.level.length, "R": curriculum.level.repeats},
            "train_time_s": train_time,
            **({"diverged_because": diverged_because} if diverged_because else {}),
        })
    return outcome
