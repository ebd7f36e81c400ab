"""Print a comparison table of the finished runs under a folder and plot their test-error curves.

Usage: python scripts/compare_runs.py <folder> [--png curves.png]
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dni_repro.reports.figures import comparison_table, load_runs, plot_curves  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--png", type=Path, help="where to write the learning curves")
    args = parser.parse_args()
    runs = load_runs(args.folder)
    if not runs:
        sys.exit(f"error: no completed runs (summary.json with status completed) under {args.folder}")
    print(comparison_table(runs))
    if args.png:
        plot_curves({"test error": runs}, args.png, f"{args.folder}")
        print(f"learning curves: {args.png}")


if __name__ == "__main__":
    main()
