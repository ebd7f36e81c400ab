"""Character-level language modelling (section 3.2, Table 2, Figs. 7 right and 14): one loop, top to bottom.

One training step is one truncated-BPTT chunk of T characters on B streams.
Every `eval_every` steps the validation bits per character are measured; the
best model so far is kept, and training stops after `early_stopping_patience`
validations without improvement (A.3: "once validation error starts to increase").
The reported result is the test BPC of the best-validation model.
"""
import copy
import math
import time
from pathlib import Path

import torch

from dni_repro.data.text_corpus import TokenStream, as_streams, load_corpus
from dni_repro.models.recurrent import RecurrentNetwork, StreamState, divergence
from dni_repro.experiments.recurrent_setup import AlignmentWindow, build_recurrent_network, build_recurrent_optimizer
from dni_repro.runs.session import RunSession
from dni_repro.runs.runtime import seed_everything, select_device

EVAL_CHUNK = 200  # characters per no-grad unroll when evaluating; the state is carried across chunks


@torch.no_grad()
def bits_per_character(net: RecurrentNetwork, tokens: torch.Tensor, num_streams: int, device: torch.device) -> float:
    """Mean cross-entropy in bits of predicting each character from all the ones before it in its stream."""
    net.eval()
    streams = as_streams(tokens, num_streams).to(device)
    state = net.initial_state(streams.shape[1], device)
    total = torch.zeros((), device=device)
    for start in range(0, len(streams) - 1, EVAL_CHUNK):
        chunk = streams[start : start + EVAL_CHUNK + 1]
        loss, state = net.loss_sum(chunk[:-1], chunk[1:], state)
        total += loss
    net.train()
    return total.item() / ((len(streams) - 1) * streams.shape[1]) / math.log(2)


def run(cfg, run_dir: Path, resume: bool = False, job_label: str = "") -> dict:
    trainer = cfg.trainer
    device = select_device(cfg.device)
    seed_everything(cfg.seed)
    corpus = load_corpus(cfg.dataset, cfg.paths.data_dir)
    stream = TokenStream(corpus.train, trainer.batch_size, device)
    eval_streams = min(trainer.eval_batch_size, len(corpus.valid) // 2, len(corpus.test) // 2)
    net = build_recurrent_network(cfg, corpus.vocab_size, corpus.vocab_size).to(device)
    optimizer = build_recurrent_optimizer(cfg, net)
    alignment = AlignmentWindow(trainer.grad_alignment_chunks)
    state = net.initial_state(trainer.batch_size, device)
    # Early-stopping record: the best validation so far, the weights that scored it, and evaluations since.
    best = {"valid_bpc": float("inf"), "step": 0, "model": None, "evaluations_since": 0}

    session = RunSession(cfg, run_dir, device, resume, job_label)
    record, saved, step, train_time = session.record, session.saved, session.first_step, 0.0
    if saved is not None:
        net.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        stream.load_state_dict(saved["stream"])
        state = StreamState.from_state_dict(saved["stream_state"], device)
        alignment.load_state_dict(saved["alignment"], device)
        best = saved["best"]
        train_time = saved["train_time_s"]

    def checkpoint() -> None:
        session.checkpoint(step, {
            "model": net.state_dict(),
            "optimizer": optimizer.state_dict(),
            "stream": stream.state_dict(),
            "stream_state": state.state_dict(),
            "alignment": alignment.state_dict(),
            "best": best,
            "train_time_s": train_time,
            **({"diverged_because": diverged_because} if diverged_because else {}),
        })

    max_steps, batch_size, unroll = trainer.max_steps, trainer.batch_size, trainer.bptt_length
    log_every, eval_every, checkpoint_every = trainer.log_every, trainer.eval_every, trainer.checkpoint_every
    patience = trainer.early_stopping_patience
    alignment_every = trainer.grad_alignment_every
    status, stopped_early, diverged_because = "failed", False, ""
    try:
        net.train()
        while step < max_steps:
            if session.stop_requested:
                checkpoint()
                break
            step_started = time.perf_counter()
            inputs, targets = stream.next_chunk(unroll)
            alignment.push(inputs, targets, None, state)
            optimizer.zero_grad(set_to_none=True)
            result, state = net.train_chunk(inputs, targets, None, state)
            optimizer.step()
            step += 1
            if device.type == "cuda":
                torch.cuda.synchronize(device)  # so time/train_s counts the step's kernels, not their launch
            train_time += time.perf_counter() - step_started

            last_step = step == max_steps
            evaluate = step % eval_every == 0 or last_step
            align = alignment_every > 0 and step % alignment_every == 0
            if evaluate or align or step % log_every == 0:
                metrics = {
                    "samples": step * batch_size * unroll,  # characters consumed, all streams together
                    "time/train_s": train_time,
                    "train/bpc": result.loss_sum.item() / result.loss_count.item() / math.log(2),
                }
                metrics.update(result.cell_metrics())
                metrics.update(result.sg_metrics())
                if align:
                    metrics.update(alignment.measure(net))
                if evaluate:
                    valid_bpc = bits_per_character(net, corpus.valid, eval_streams, device)
                    metrics["valid/bpc"] = valid_bpc
                    if valid_bpc < best["valid_bpc"]:
                        model_copy = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
                        best = {"valid_bpc": valid_bpc, "step": step, "model": model_copy, "evaluations_since": 0}
                    else:
                        best["evaluations_since"] += 1
                    metrics["valid/best_bpc"] = best["valid_bpc"]
                record.log(step, metrics)
                diverged_because = divergence(metrics["train/bpc"], metrics)
                if diverged_because:
                    status = "diverged"
                    break
                stopped_early = evaluate and patience > 0 and best["evaluations_since"] >= patience
            if step % checkpoint_every == 0 or last_step or stopped_early:
                checkpoint()
            if stopped_early:
                break
        else:
            status = "completed"
        if stopped_early:
            status = "completed"
    finally:
        test_bpc = float("nan")
        if status == "completed" and best["model"] is not None:
            scored = copy.deepcopy(net)
            scored.load_state_dict(best["model"])
            test_bpc = bits_per_character(scored, corpus.test, eval_streams, device)
        outcome = session.finish(status, step, batch_size * unroll, {
            "test_bpc": test_bpc,  # of the best-validation model
            "best_valid_bpc": best["valid_bpc"],
            "best_step": best["step"],
            "stopped_early": stopped_early,
            "corpus": {"name": corpus.name, "vocab": corpus.vocab_size,
                       "characters": [len(corpus.train), len(corpus.valid), len(corpus.test)]},
            "train_time_s": train_time,
            **({"diverged_because": diverged_because} if diverged_because else {}),
        })
    return outcome
