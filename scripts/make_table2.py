"""Write results/table2.md from the Copy, Repeat Copy and language-model run folders.

Usage: python scripts/make_table2.py [--logs logs] [--out results/table2.md] [--keep-from FILE]

With --keep-from (an earlier table2.md), every run that table lists stays in, rebuilt from its
provenance line, unless a newer run folder of the same setting and seed replaces it: a fresh
checkout has no logs/, and rerunning some settings must not blank the others.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dni_repro.reports.recurrent import row_of, table2_markdown, with_kept_runs  # noqa: E402
from dni_repro.reports.figures import load_runs  # noqa: E402

FOLDERS = ("table2_copy", "table2_repeat_copy", "table2_lm")


def table2_runs(logs: Path) -> list:
    runs = [run for name in FOLDERS if (logs / name).is_dir() for run in load_runs(logs / name)]
    return [run for run in runs if row_of(run) is not None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=Path, default=Path("logs"))
    parser.add_argument("--out", type=Path, default=Path("results/table2.md"))
    parser.add_argument("--keep-from", type=Path, default=None,
                        help="an earlier table2.md whose runs stay in unless a newer folder replaces them")
    args = parser.parse_args()
    runs = table2_runs(args.logs)
    if args.keep_from is not None:
        if not args.keep_from.is_file():
            sys.exit(f"error: --keep-from {args.keep_from} is not a file; name an earlier results/table2.md")
        try:
            runs = with_kept_runs(runs, args.keep_from.read_text())
        except ValueError as error:  # a hand-edited or foreign table
            sys.exit(f"error: --keep-from {args.keep_from}: {error}; regenerate it with scripts/make_table2.py")
    if not runs:
        sys.exit(f"error: no completed runs under {args.logs}/{{{','.join(FOLDERS)}}}; run `make table2` first")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table2_markdown(runs))
    print(f"wrote {args.out} from {len(runs)} runs")


if __name__ == "__main__":
    main()
