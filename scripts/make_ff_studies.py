"""Write results/<name>.md and .png for one feed-forward study from its run folders.

Usage: python scripts/make_ff_studies.py {fig5,fig9,fig12,stale-baseline,deep-cdni,czarnecki-interfaces} [--logs DIR ...] [--out-dir results]
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dni_repro.reports import studies  # noqa: E402
from dni_repro.reports.figures import load_runs, write_report  # noqa: E402

# study -> (report function, default log folders, output names: markdown, then one PNG per figure)
STUDIES = {
    "fig5": (studies.fig5_report, ["logs/fig5"], ["fig5.md", "fig5.png"]),
    "fig9": (studies.fig9_report, ["logs/fig9"], ["fig9.md", "fig9.png", "fig10.png"]),
    # Table 1's DNI and cDNI columns are Fig. 12's deeper and linear cells: reuse those runs.
    "fig12": (studies.fig12_report, ["logs/fig12", "logs/table1"], ["fig12.md", "fig12.png"]),
    "stale-baseline": (studies.stale_report, ["logs/stale"], ["stale_baseline.md", "stale_baseline.png"]),
    "deep-cdni": (studies.deep_report, ["logs/deep"], ["deep_cdni.md", "deep_cdni.png"]),
    "czarnecki-interfaces": (
        studies.interfaces_report, ["logs/czarnecki_interfaces"], ["czarnecki_interfaces.md", "czarnecki_interfaces.png"]
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", choices=sorted(STUDIES))
    parser.add_argument("--logs", type=Path, nargs="+", help="run folders to read (default: the study's own)")
    parser.add_argument("--out-dir", type=Path, default=Path("results"))
    args = parser.parse_args()
    report, default_logs, outputs = STUDIES[args.study]
    folders = [folder for folder in (args.logs or [Path(p) for p in default_logs]) if folder.is_dir()]
    runs = [run for folder in folders for run in load_runs(folder)]
    if not runs:
        wanted = " or ".join(str(p) for p in (args.logs or default_logs))
        sys.exit(f"error: no completed runs under {wanted}; run `make {args.study}` (see `make help`) first")
    markdown, *figures = report(runs)
    written = write_report(args.out_dir, outputs, markdown, figures)
    print(f"wrote {written} from {len(runs)} completed runs")


if __name__ == "__main__":
    main()
