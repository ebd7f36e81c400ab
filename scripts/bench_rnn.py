"""Step time of recurrent dni and dni_aux against truncated BPTT at the same T and batch.

One training step is one chunk of T time steps: forward, backward and Adam, as
the experiment loops run it. The three interfaces take turns for `--rounds`
rounds in this one process, and each side's fastest round counts. Inputs are
preloaded (T, B) symbol tensors, as in the experiments. Prints ms per step and
the ratios to BPTT (the issue's target: at most 1.15x at T=5 for 256 units).

Usage: python scripts/bench_rnn.py [--units 256] [--batch 256] [--unroll 5] [--steps 100] [--rounds 5] [--device auto]
"""
import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dni_repro.names import InterfaceName  # noqa: E402
from dni_repro.models.recurrent import RecurrentNetwork  # noqa: E402
from dni_repro.runs.runtime import device_description, select_device  # noqa: E402

INTERFACES = ("bptt", "dni", "dni_aux")
VOCAB = 50  # about Penn Treebank's character set


def make_trainer(interface: str, units: int, batch: int, unroll: int, device: torch.device):
    net = RecurrentNetwork(VOCAB, VOCAB, units, InterfaceName(interface)).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    chunks = [torch.randint(VOCAB, (unroll + 1, batch), generator=generator).to(device) for _ in range(8)]
    state = {"stream": net.initial_state(batch, device)}

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

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--unroll", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = select_device(args.device)
    trainers = {name: make_trainer(name, args.units, args.batch, args.unroll, device) for name in INTERFACES}
    for run in trainers.values():
        run(5)  # warm-up: allocator, kernels
    best = {name: float("inf") for name in INTERFACES}
    for _ in range(args.rounds):
        for name, run in trainers.items():
            best[name] = min(best[name], run(args.steps))
    print(f"device: {device_description(device)}; LSTM {args.units} units, batch {args.batch}, T={args.unroll}, "
          f"{args.steps} steps x {args.rounds} rounds, fastest round")
    for name in INTERFACES:
        print(f"{name:8s} {best[name] * 1e3:8.2f} ms/step   {best[name] / best['bptt']:.2f}x bptt")


if __name__ == "__main__":
    main()
