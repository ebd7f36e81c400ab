"""Write results/<stem>.md and <stem>.png from the multi-network runs (section 3.3, Fig. 8).

Runs of one profile make one report: pass --profile when logs/fig8 holds several.
Usage: python scripts/make_fig8.py [--logs logs/fig8] [--out-dir results] [--profile quick] [--stem fig8]
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dni_repro.reports.multi_network import fig8_report, regime_of  # noqa: E402
from dni_repro.reports.figures import load_runs, write_report  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=Path, default=Path("logs/fig8"))
    parser.add_argument("--out-dir", type=Path, default=Path("results"))
    parser.add_argument("--profile", default=None, help="only the runs of this profile (quick, paper, smoke)")
    parser.add_argument("--stem", default="fig8", help="output file names: <stem>.md and <stem>.png")
    args = parser.parse_args()
    runs = [run for run in load_runs(args.logs) if regime_of(run) is not None] if args.logs.is_dir() else []
    if args.profile is not None:
        runs = [run for run in runs if run.summary["provenance"]["profile"] == args.profile]
    if not runs:
        sys.exit(f"error: no completed multi-network runs{' of profile ' + args.profile if args.profile else ''} "
                 f"under {args.logs}; run `make fig8` first")
    profiles = sorted({run.summary["provenance"]["profile"] for run in runs})
    if len(profiles) > 1:
        sys.exit(f"error: {args.logs} holds runs of the profiles {', '.join(profiles)}; pick one with --profile")
    markdown, plot = fig8_report(runs)
    written = write_report(args.out_dir, (f"{args.stem}.md", f"{args.stem}.png"), markdown, (plot,))
    print(f"wrote {written} from {len(runs)} {profiles[0]}-profile runs")


if __name__ == "__main__":
    main()
