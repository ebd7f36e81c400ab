"""Write results/czarnecki_mnist.md and its three PNGs (curves, RDMs, weight norms) from the deep-MNIST runs.

Usage: python scripts/make_czarnecki_mnist.py [--logs logs/czarnecki_mnist] [--out-dir results] [--probe-per-class 20]
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from dni_repro.czarnecki.mnist_report import measure, report, select_runs  # noqa: E402
from dni_repro.data import load_dataset  # noqa: E402
from dni_repro.reports.figures import load_runs, write_report  # noqa: E402
from dni_repro.czarnecki.representations import class_sorted_probe  # noqa: E402

OUTPUTS = ("czarnecki_mnist.md", "czarnecki_mnist_curves.png", "czarnecki_mnist_rdms.png", "czarnecki_mnist_norms.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=Path, default=Path("logs/czarnecki_mnist"))
    parser.add_argument("--out-dir", type=Path, default=Path("results"))
    parser.add_argument("--probe-per-class", type=int, default=20)
    args = parser.parse_args()
    runs = select_runs(load_runs(args.logs)) if args.logs.is_dir() else []
    if not runs:
        sys.exit(f"error: no completed Bprop or single-SG FCN runs under {args.logs}; run `make czarnecki-mnist` first")
    datasets = {run.config["dataset"]["name"] for run in runs}
    if len(datasets) > 1:
        sys.exit(f"error: the runs under {args.logs} mix datasets {sorted(datasets)}; pass --logs with one of them")
    torch.set_num_threads(1)
    config = runs[0].config
    data = load_dataset(OmegaConf.create(config["dataset"]), config["paths"]["data_dir"])
    probe = class_sorted_probe(data.test.labels, args.probe_per_class, data.num_classes)
    deep_runs = [measure(run, data.test.inputs[probe], data.input_shape, data.num_classes) for run in runs]
    markdown, figures = report(deep_runs, args.probe_per_class)
    print(f"wrote {write_report(args.out_dir, OUTPUTS, markdown, figures)} from {len(runs)} runs")


if __name__ == "__main__":
    main()
