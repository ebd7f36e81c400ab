"""How much of its target an SG model could explain at all: an offline ceiling for `train/sg_explained`.

The trained LSTM of a recurrent run's checkpoint (Copy, Repeat Copy or the language model), frozen,
reads its training stream chunk by chunk from where the run stopped. At every boundary it records
what M reads there and the gradient of the next chunk's summed task loss with respect to (h, c):
M's target when the bootstrapped part is small (the consumed target at sg_scale 0.1, with M near
zero). Predictors are then fitted to the first part of those pairs and scored on the rest, with the
explained share the runs log (1 - squared error / squared target norm; 0 is predicting zero):

- the run's own M, as trained;
- the training pairs' mean target (a constant);
- a least-squares linear map;
- a fresh model of M's shape, and one 4x wider, trained offline by Adam for many passes.

If even the offline fits explain little of held-out targets, the target is mostly what M cannot
know from the state (the future inputs), and a near-zero `train/sg_explained` is no defect of M.

Usage: python scripts/sg_ceiling.py RUN_DIR [RUN_DIR ...] [--chunks 800] [--epochs 20] [--out FILE]
"""
import argparse
import datetime
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dni_repro.data.copy_tasks import CopyTaskStream, CopyVocabulary, Level  # noqa: E402
from dni_repro.data.text_corpus import TokenStream, load_corpus  # noqa: E402
from dni_repro.dni.synthetic_gradient import ReLUSyntheticGradient  # noqa: E402
from dni_repro.experiments.recurrent_setup import build_recurrent_network  # noqa: E402
from dni_repro.models.recurrent import StreamState  # noqa: E402
from dni_repro.runs.runtime import git_commit  # noqa: E402

HELD_OUT = 0.25  # the last quarter of the boundaries, later in the stream than every fitted pair


def restore(run_dir: Path):
    """The run's config, trained network, training stream and stream state, as its checkpoint left them."""
    path = run_dir / "checkpoint.pt"
    if not path.is_file():
        sys.exit(f"error: {path} does not exist; name the folder of a finished recurrent run (it keeps checkpoint.pt)")
    saved = torch.load(path, map_location="cpu", weights_only=False)
    cfg = OmegaConf.create(saved["config"])
    if cfg.interface.name not in ("dni", "dni_aux"):
        sys.exit(f"error: {run_dir} is a {cfg.interface.name} run; the ceiling compares with a trained M, so name a dni or dni_aux run")
    if cfg.dataset.task == "copy":
        task = cfg.dataset.copy_task
        vocab = CopyVocabulary(task.alphabet, task.max_repeats)
        # The seed and level are placeholders: the saved stream brings its own generator state and level.
        stream = CopyTaskStream(vocab, Level(task.start_length, task.start_repeats if task.repeat else 1, task.repeat),
                                cfg.trainer.batch_size, 0, torch.device("cpu"))
        stream.load_state_dict(saved["stream"])
        sizes, next_chunk = (vocab.input_size, vocab.output_size), lambda: stream.next_chunk(cfg.trainer.bptt_length)
    else:
        corpus = load_corpus(cfg.dataset, cfg.paths.data_dir)
        stream = TokenStream(corpus.train, cfg.trainer.batch_size, torch.device("cpu"))
        stream.load_state_dict(saved["stream"])
        sizes = (corpus.vocab_size, corpus.vocab_size)
        next_chunk = lambda: (*stream.next_chunk(cfg.trainer.bptt_length), None)  # noqa: E731
    net = build_recurrent_network(cfg, *sizes)
    net.load_state_dict(saved["model"])
    state = StreamState.from_state_dict(saved["stream_state"], torch.device("cpu"))
    return cfg, saved["step"], net, next_chunk, state


def boundary_pairs(net, next_chunk, state: StreamState, chunks: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(what M reads, the next chunk's loss gradient w.r.t. (h, c)) at `chunks` successive boundaries."""
    reads, targets = [], []
    for _ in range(chunks):
        symbols, next_targets, weights = next_chunk()
        h0, c0 = state.h.detach().requires_grad_(), state.c.detach().requires_grad_()
        loss, h, c = net.chunk_loss(symbols, next_targets, weights, h0, c0)
        gradient = torch.autograd.grad(loss, (h0, c0), materialize_grads=True)
        reads.append(net.sg_reads(state.h, state.c).detach())
        targets.append(torch.cat(gradient, dim=1))
        state = StreamState(h.detach(), c.detach())
    return torch.cat(reads), torch.cat(targets)


def explained(prediction: torch.Tensor, target: torch.Tensor) -> float:
    return 1 - ((prediction - target).pow(2).sum() / target.pow(2).sum()).item()


def fit_offline(model: torch.nn.Module, reads: torch.Tensor, targets: torch.Tensor, epochs: int) -> torch.nn.Module:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for rows in torch.randperm(len(reads), generator=generator).split(256):
            optimizer.zero_grad()
            (model(reads[rows]) - targets[rows]).pow(2).sum(dim=1).mean().backward()
            optimizer.step()
    return model


def ceiling_rows(run_dir: Path, chunks: int, epochs: int) -> list[str]:
    cfg, step, net, next_chunk, state = restore(run_dir)
    torch.manual_seed(0)
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    reads, targets = boundary_pairs(net, next_chunk, state, chunks)
    cut = int(len(reads) * (1 - HELD_OUT))
    (fit_x, test_x), (fit_y, test_y) = (reads[:cut], reads[cut:]), (targets[:cut], targets[cut:])
    units, width = net.units, cfg.interface.get("sg_hidden_width") or net.units
    with torch.no_grad():
        linear = torch.linalg.lstsq(torch.cat([fit_x, torch.ones(len(fit_x), 1)], 1), fit_y).solution
        scores = {
            "the run's own M, as trained": explained(net.synthetic_gradient(test_x), test_y),
            "the mean training target": explained(fit_y.mean(0).expand_as(test_y), test_y),
            "least-squares linear map": explained(torch.cat([test_x, torch.ones(len(test_x), 1)], 1) @ linear, test_y),
        }
    for label, hidden in ((f"fresh M ({width} hidden), {epochs} passes", width),
                          (f"fresh M, 4x wider ({4 * width} hidden), {epochs} passes", 4 * width)):
        model = fit_offline(ReLUSyntheticGradient(fit_x.shape[1], 2 * units, 1, hidden), fit_x, fit_y, epochs)
        with torch.no_grad():
            scores[label] = explained(model(test_x), test_y)
    name = f"{cfg.dataset.name}, {cfg.interface.name}, T={cfg.trainer.bptt_length}, seed {cfg.seed}"
    folder = f"{run_dir.parent.parent.name}/{run_dir.name}"
    return [f"| {name} | {folder} | {step} | {label} | {score:.3f} |" for label, score in scores.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="folders of finished dni or dni_aux recurrent runs")
    parser.add_argument("--chunks", type=int, default=800, help="boundaries per stream to record (a quarter held out)")
    parser.add_argument("--epochs", type=int, default=20, help="passes of the offline fits over their pairs")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown here (default: print it)")
    args = parser.parse_args()
    if args.chunks < 4 or args.epochs < 1:
        sys.exit("error: --chunks must be at least 4 and --epochs at least 1")
    lines = ["# How much of M's target can be predicted from what M reads (held-out explained share)", "",
             f"`scripts/sg_ceiling.py`, {args.chunks} boundaries per stream (the last {HELD_OUT:.0%} held out), "
             f"{args.epochs} passes; {datetime.date.today().isoformat()}, commit {git_commit(Path(__file__).resolve().parents[1])}, cpu.", "",
             "| run | folder | its step | predictor | held-out explained share |", "|---|---|---|---|---|"]
    for run_dir in args.runs:
        lines += ceiling_rows(run_dir, args.chunks, args.epochs)
    text = "\n".join(lines) + "\n"
    if args.out is None:
        print(text, end="")
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
