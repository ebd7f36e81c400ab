"""Build results/table1.md (and the MNIST FCN learning curves) from Table 1 run folders.

Usage: python scripts/make_table1.py --logs logs/table1 --out results/table1.md [--png curves.png]
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dni_repro.reports.paper_results import TABLE1_FAMILIES  # noqa: E402
from dni_repro.reports.figures import caption, load_runs, plot_curves  # noqa: E402
from dni_repro.reports.table1 import table1_cells, table1_markdown  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=Path, default=Path("logs/table1"))
    parser.add_argument("--out", type=Path, default=Path("results/table1.md"))
    parser.add_argument("--png", type=Path, help="MNIST FCN test-error curves, one panel per depth (Fig. 11a)")
    args = parser.parse_args()
    if not args.logs.is_dir():
        sys.exit(f"error: {args.logs} does not exist; run a table1 target first (make table1-mnist-fcn)")
    runs = load_runs(args.logs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table1_markdown(runs))
    print(f"wrote {args.out} from {len(runs)} completed runs")
    cells = table1_cells(runs)
    if args.png:
        panels = {}
        for (dataset, model, depth, _), group in sorted(cells.items()):
            if TABLE1_FAMILIES[dataset] == "MNIST" and model == "fcn":
                # One curve per method and dataset: the first seed's run.
                panels.setdefault(f"{dataset} FCN, {depth} layers", []).append(group[0])
        if panels:
            shown = [run for group in panels.values() for run in group]
            title = f"Test error (%). {caption(shown)}"
            plot_curves(panels, args.png, title)
            print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
