"""Step time of recurrent dni and dni_aux against truncated BPTT at the same T and batch.

One training step is one chunk of T time steps: forward, backward and Adam, as
the experiment loops run it. The three interfaces take turns for `--rounds`
rounds in this one process, and each side's fastest round counts. Inputs are
preloaded (T, B) symbol tensors, as in the experiments. Prints ms per step and
the ratios to BPTT (the issue's target: at most 1.15x at T=5 for 256 units).

Fresh networks hide what happens later: an SG model that barely learns leaves Adam's moments
in subnormal floats, which make CPU arithmetic several times slower. So each network then trains
`--trained-steps` steps with denormals kept (as the suite ran before it flushed them), and is timed
again with denormals kept and flushed (the suite's default on CPU), with the share of Adam's
state that was subnormal.

Usage: python scripts/bench_rnn.py [--units 256] [--batch 256] [--unroll 5] [--steps 100] [--rounds 5]
                                   [--trained-steps 1000] [--device auto]
"""
import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dni_repro.data.text_corpus import as_streams, load_ptb_char  # noqa: E402
from dni_repro.errors import DataError  # noqa: E402
from dni_repro.names import InterfaceName  # noqa: E402
from dni_repro.models.recurrent import RecurrentNetwork  # noqa: E402
from dni_repro.runs.runtime import device_description, select_device  # noqa: E402

INTERFACES = ("bptt", "dni", "dni_aux")
VOCAB = 50  # about Penn Treebank's character set


def text_chunks(unroll: int, batch: int, device: torch.device, count: int = 64) -> list[torch.Tensor]:
    """(T + 1, B) chunks of Penn Treebank's characters where the treebank package is installed
    (trained networks then look like the experiments' ones), else of uniform random symbols."""
    try:
        corpus = load_ptb_char(Path("/nonexistent"), download=False)
    except DataError:
        generator = torch.Generator().manual_seed(0)
        return [torch.randint(VOCAB, (unroll + 1, batch), generator=generator).to(device) for _ in range(count)]
    streams = as_streams(corpus.train, batch)
    return [streams[k * unroll : (k + 1) * unroll + 1].to(device) for k in range(count)]


def make_trainer(interface: str, units: int, batch: int, unroll: int, device: torch.device):
    net = RecurrentNetwork(VOCAB, VOCAB, units, InterfaceName(interface)).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    chunks = text_chunks(unroll, batch, device)
    state = {"stream": net.initial_state(batch, device)}

    def subnormal_share() -> float:
        moments = [v for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v) and v.dim() > 0]
        tiny = torch.finfo(torch.float32).tiny
        subnormal = sum(((m != 0) & (m.abs() < tiny)).sum().item() for m in moments)
        return subnormal / max(1, sum(m.numel() for m in moments))

    def run(steps: int) -> float:
        started = time.perf_counter()
        for i in range(steps):
            chunk = chunks[i % len(chunks)]
            optimizer.zero_grad(set_to_none=True)
            _, state["stream"] = net.train_chunk(chunk[:-1], chunk[1:], None, state["stream"])
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return (time.perf_counter() - started) / steps

    run.subnormal_share = subnormal_share
    return run


def fastest(trainers: dict, steps: int, rounds: int) -> dict:
    best = {name: float("inf") for name in trainers}
    for _ in range(rounds):
        for name, run in trainers.items():
            best[name] = min(best[name], run(steps))
    return best


def show(title: str, best: dict) -> None:
    print(title)
    for name in INTERFACES:
        print(f"{name:8s} {best[name] * 1e3:8.2f} ms/step   {best[name] / best['bptt']:.2f}x bptt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--unroll", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--trained-steps", type=int, default=1000, help="training before the second timing (0: skip)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = select_device(args.device)
    trainers = {name: make_trainer(name, args.units, args.batch, args.unroll, device) for name in INTERFACES}
    for run in trainers.values():
        run(5)  # warm-up: allocator, kernels
    print(f"device: {device_description(device)}; LSTM {args.units} units, batch {args.batch}, T={args.unroll}, "
          f"{args.steps} steps x {args.rounds} rounds, fastest round")
    show("fresh networks, denormals flushed:", fastest(trainers, args.steps, args.rounds))
    if args.trained_steps == 0:
        return
    torch.set_flush_denormal(False)
    for run in trainers.values():
        run(args.trained_steps)
    shares = ", ".join(f"{name} {run.subnormal_share():.1%}" for name, run in trainers.items())
    print(f"after {args.trained_steps} training steps with denormals kept, subnormal share of Adam's state: {shares}")
    show("trained, denormals kept:", fastest(trainers, args.steps, args.rounds))
    torch.set_flush_denormal(True)
    show("trained, denormals flushed:", fastest(trainers, args.steps, args.rounds))


if __name__ == "__main__":
    main()
