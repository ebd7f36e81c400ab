"""Write results/fig8.md and results/fig8.png from the multi-network runs (section 3.3).

Usage: python scripts/make_fig8.py [--logs logs/fig8] [--out-dir results]
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dni_repro.multi_network_report import fig8_report, regime_of  # noqa: E402
from dni_repro.reports import load_runs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=Path, default=Path("logs/fig8"))
    parser.add_argument("--out-dir", type=Path, default=Path("results"))
    args = parser.parse_args()
    runs = [run for run in load_runs(args.logs) if regime_of(run) is not None] if args.logs.is_dir() else []
    if not runs:
        sys.exit(f"error: no completed multi-network runs under {args.logs}; run `make fig8` first")
    markdown, plot = fig8_report(runs)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "fig8.md").write_text(markdown)
    plot(args.out_dir / "fig8.png")
    print(f"wrote {args.out_dir}/fig8.md and fig8.png from {len(runs)} runs")


if __name__ == "__main__":
    main()
