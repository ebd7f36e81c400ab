"""Write the curriculum curves, the BPC curves and the time-to-target table from the Table 2 runs.

Outputs in --out-dir: fig7_curriculum.png (Figs. 7 left, 15), fig7_bpc.png (Figs. 7 right, 14), fig7.md.
Usage: python scripts/make_fig7.py [--logs logs] [--out-dir results]
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dni_repro.reports.recurrent import fig7_reports  # noqa: E402
from dni_repro.reports.figures import write_report  # noqa: E402
from scripts.make_table2 import table2_runs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=Path, default=Path("logs"))
    parser.add_argument("--out-dir", type=Path, default=Path("results"))
    args = parser.parse_args()
    runs = table2_runs(args.logs)
    if not runs:
        sys.exit(f"error: no completed runs under {args.logs}; run `make table2` first")
    markdown, curriculum, bpc = fig7_reports(runs)
    written = write_report(args.out_dir, ("fig7.md", "fig7_curriculum.png", "fig7_bpc.png"), markdown, (curriculum, bpc))
    print(f"wrote {written} from {len(runs)} runs")


if __name__ == "__main__":
    main()
