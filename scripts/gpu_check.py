"""The CUDA path, checked in one go on a machine with a GPU (`make gpu-check`, under 5 minutes).

Runs a few hundred steps of every task on device=cuda (the MNIST FCN at the paper profile with DNI
and cDNI, Copy, Repeat Copy, the Penn Treebank character LM, the two-network system), then the
decoupled benchmark (cDNI, 4 layers) with one worker per GPU (NCCL). Prints steps/s and the first
metrics of each, and writes them to results/gpu_check.md, labelled like every results file.
Usage: python scripts/gpu_check.py [--steps 300] [--out results/gpu_check.md]
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from dni_repro.runs.runtime import git_commit  # noqa: E402

# (label, overrides): each at `--steps` steps on CUDA, evaluated once at the end.
CHECKS = [
    ("MNIST FCN 4 layers, DNI, paper profile", ["experiment=table1_mnist_fcn_dni", "profile=paper", "dataset=mnist_5k"]),
    ("MNIST FCN 4 layers, cDNI, paper profile", ["experiment=table1_mnist_fcn_cdni", "profile=paper", "dataset=mnist_5k"]),
    ("Copy, DNI+Aux, T=5", ["experiment=table2_copy", "interface=dni_aux"]),
    ("Repeat Copy, DNI, T=5", ["experiment=table2_repeat_copy", "interface=dni"]),
    ("PTB characters, DNI+Aux, T=5", ["experiment=table2_lm", "interface=dni_aux", "trainer.eval_batch_size=1024"]),
    ("Fig. 8, DNI", ["experiment=fig8", "interface=dni"]),
]
FIRST_METRICS = ("train/loss", "train/sg_loss", "test/error", "train/bpc", "valid/bpc", "train/max_task_length",
                 "train/b_loss", "test/b_error")


def train(label: str, overrides: list[str], steps: int, logs: Path) -> dict:
    run_dir = logs / label.replace(" ", "_").replace(",", "").replace(".", "")
    # Fig. 8 steps are time steps whose updates (and logs) fall on multiples of T^2 = 16.
    steps = max(32, steps - steps % 32)
    command = [sys.executable, "train.py", *overrides, "device=cuda", "logger=none", "trainer.progress=false",
               f"trainer.max_steps={steps}", f"trainer.eval_every={steps}", f"trainer.checkpoint_every={steps}",
               f"trainer.log_every={steps // 2}", f"hydra.run.dir={run_dir}"]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "WANDB_MODE": "disabled"})
    wall = time.perf_counter() - started
    if result.returncode != 0:
        return {"label": label, "status": f"failed ({result.returncode}): {result.stderr.strip().splitlines()[-1:]}"}
    summary = json.loads((run_dir / "summary.json").read_text())
    first = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])
    return {"label": label, "status": summary["status"], "steps_per_s": summary["steps"] / summary["wall_time_s"],
            "wall_s": wall, "first": {k: first[k] for k in FIRST_METRICS if k in first},
            "final": {k: summary["final"][k] for k in FIRST_METRICS if k in summary["final"]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "gpu_check.md")
    parser.add_argument("--logs", type=Path, default=REPO / "logs" / "gpu_check")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("error: make gpu-check needs a CUDA device, and torch sees none here; run it on a GPU machine")
    gpus = torch.cuda.device_count()
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S") + f"_{os.getpid()}"
    logs = args.logs / stamp
    rows = []
    for label, overrides in CHECKS:
        print(f"[gpu-check] {label} ...", file=sys.stderr, flush=True)
        rows.append(train(label, overrides, args.steps, logs))
        print(f"[gpu-check] {rows[-1]}", file=sys.stderr, flush=True)
    device = f"{torch.cuda.get_device_name(0)} x {gpus}"
    lines = ["# GPU check: every task on CUDA, and decoupled execution over NCCL", "",
             f"Runs: device: {device}; steps: {args.steps} each; date: {datetime.date.today()}; "
             f"commit: {git_commit(REPO)}; command: `make gpu-check`.", "",
             "| run | status | steps/s | wall (s) | first logged | final |", "|---|---|---|---|---|---|"]
    for row in rows:
        if "steps_per_s" not in row:
            lines.append(f"| {row['label']} | {row['status']} | — | — | — | — |")
            continue
        first = ", ".join(f"{k}={v:.4g}" for k, v in row["first"].items())
        final = ", ".join(f"{k}={v:.4g}" for k, v in row["final"].items())
        lines.append(f"| {row['label']} | {row['status']} | {row['steps_per_s']:.1f} | {row['wall_s']:.0f} "
                     f"| {first} | {final} |")
    if gpus >= 2:
        decoupled = args.out.with_name("gpu_check_decoupled.md")
        print(f"[gpu-check] decoupled benchmark on {gpus} GPUs ...", file=sys.stderr, flush=True)
        bench = subprocess.run([sys.executable, "scripts/bench_decoupled.py", "--workers", str(gpus), "--depths", "4",
                                "--interfaces", "cdni", "--steps-cdni", str(args.steps), "--out", str(decoupled)],
                               cwd=REPO)
        lines += ["", f"Decoupled benchmark ({gpus} workers, one GPU each): "
                  + (f"[{decoupled.name}]({decoupled.name})" if bench.returncode == 0 else f"failed ({bench.returncode})")]
    else:
        lines += ["", "Decoupled benchmark: skipped, it needs at least 2 GPUs (one per worker)."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
