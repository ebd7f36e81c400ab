"""Write the curriculum curves, the BPC curves and the time-to-target table from the Table 2 runs.

Outputs in --out-dir: fig7_curriculum.png (Figs. 7 left, 15), fig7_bpc.png (Figs. 7 right, 14), fig7.md.
--long-runs names a folder of longer language-model runs at T=5 (for instance run to the characters that
BPTT T=20 saw); each gets a time-to-target section of its own against the Table 2 BPTT T=20 run.
Usage: python scripts/make_fig7.py [--logs logs] [--out-dir results] [--long-runs logs/lm_long]
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dni_repro.reports.recurrent import fig7_reports, setting, time_to_target_markdown  # noqa: E402
from dni_repro.reports.figures import load_runs, write_report  # noqa: E402
from scripts.make_table2 import table2_runs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=Path, default=Path("logs"))
    parser.add_argument("--out-dir", type=Path, default=Path("results"))
    parser.add_argument("--long-runs", type=Path, default=None)
    args = parser.parse_args()
    runs = table2_runs(args.logs)
    if not runs:
        sys.exit(f"error: no completed runs under {args.logs}; run `make table2` first")
    markdown, curriculum, bpc = fig7_reports(runs)
    if args.long_runs is not None:
        markdown += long_run_sections(runs, args.long_runs)
    written = write_report(args.out_dir, ("fig7.md", "fig7_curriculum.png", "fig7_bpc.png"), markdown, (curriculum, bpc))
    print(f"wrote {written} from {len(runs)} runs")


def long_run_sections(table2: list, folder: Path) -> str:
    # The baseline itself, if it sits in the folder too, gets no section against itself.
    long_runs = [run for run in load_runs(folder) if (setting(run) or ("",))[0] == "lm" and setting(run) != ("lm", "bptt", 20)]
    if not long_runs:
        sys.exit(f"error: no completed language-model runs under {folder}")
    baseline = [run for run in table2 if setting(run) == ("lm", "bptt", 20)]
    sections = ""
    for run in long_runs:
        _, interface, unroll = setting(run)
        heading = f"\n# Longer run: {interface} T={unroll} for {run.summary['steps']} steps (from {folder})\n\n"
        sections += heading + time_to_target_markdown([run, *baseline], fast=(interface, unroll))
    return sections


if __name__ == "__main__":
    main()
