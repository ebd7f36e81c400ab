"""Speed of the suite's feed-forward training loop against a minimal PyTorch loop.

Both train the Table 1 MNIST FCN (4 layers, batch 256, Adam) with Bprop on the
embedded digits, already on the device, in this one process. Each side runs
`--rounds` times, alternating, and its best round counts. Prints:
  suite/minimal throughput (target >= 0.90), DNI/Bprop and cDNI/Bprop step time.

Usage: python scripts/bench_ff.py [--steps 600] [--rounds 3] [--device auto]
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dni_repro.config import compose_train_config  # noqa: E402
from dni_repro.data import load_dataset  # noqa: E402
from dni_repro.launch import run_job  # noqa: E402
from dni_repro.models.feedforward import fcn_layers  # noqa: E402
from dni_repro.runs.runtime import select_device  # noqa: E402

BATCH = 256


def suite_samples_per_s(interface: str, steps: int, device: str) -> float:
    overrides = [
        "experiment=demo",
        f"interface={interface}",
        f"device={device}",
        f"trainer.max_steps={steps}",
        f"trainer.eval_every={steps}",
        f"trainer.log_every={steps}",
        f"trainer.checkpoint_every={steps}",
    ]
    with tempfile.TemporaryDirectory() as run_dir:
        summary = run_job(compose_train_config(overrides), Path(run_dir))
    return summary["samples_per_s"]


def minimal_samples_per_s(steps: int, device: str) -> float:
    """What a researcher would write by hand: no interfaces, no logging, no checkpoints."""
    cfg = compose_train_config(["experiment=demo"])
    torch_device = select_device(device)
    data = load_dataset(cfg.dataset, cfg.paths.data_dir).to(torch_device)
    model = torch.nn.Sequential(*fcn_layers(data.input_shape, 10, cfg.model.depth, cfg.model.width)).to(torch_device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.optimizer.lr)
    inputs, labels = data.train.inputs, data.train.labels
    started = time.perf_counter()
    for _ in range(steps):
        indices = torch.randint(0, len(labels), (BATCH,), device=torch_device)
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(inputs[indices]), labels[indices])
        loss.backward()
        optimizer.step()
    if torch_device.type == "cuda":
        torch.cuda.synchronize()
    return steps * BATCH / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    minimal, bprop = [], []
    for _ in range(args.rounds):
        minimal.append(minimal_samples_per_s(args.steps, args.device))
        bprop.append(suite_samples_per_s("bprop", args.steps, args.device))
    dni = suite_samples_per_s("dni", max(args.steps // 4, 50), args.device)
    cdni = suite_samples_per_s("cdni", args.steps, args.device)
    best_minimal, best_bprop = max(minimal), max(bprop)
    print(f"device: {select_device(args.device)}, torch threads: {torch.get_num_threads()}, steps per round: {args.steps}")
    print(f"minimal loop      {best_minimal:10.0f} samples/s")
    print(f"suite bprop       {best_bprop:10.0f} samples/s")
    print(f"suite dni         {dni:10.0f} samples/s")
    print(f"suite cdni        {cdni:10.0f} samples/s")
    print(f"suite/minimal throughput (bprop): {best_bprop / best_minimal:.3f}  (target >= 0.90)")
    print(f"DNI/Bprop step time:  {best_bprop / dni:.2f}x")
    print(f"cDNI/Bprop step time: {best_bprop / cdni:.2f}x")


if __name__ == "__main__":
    main()
