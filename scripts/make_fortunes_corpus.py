"""Write one UTF-8 English text from Debian's `fortunes` package, the quick profile's stand-in for Penn Treebank.

Penn Treebank cannot be downloaded on every machine; this corpus (about 2.5 MB of
quotations, jokes and literature excerpts, `apt-get install fortunes`) can be
installed offline from Debian. The ASCII-art collections are left out. The
fortunes are shuffled with a fixed seed, so that the train/valid/test cut of
`dataset=text` (in file order) draws all three from the same mix of collections,
and written one after another without their '%' separator lines.

Usage: python scripts/make_fortunes_corpus.py [--source /usr/share/games/fortunes] [--out data/fortunes.txt]
"""
import argparse
import random
import re
import sys
from pathlib import Path

SKIPPED = {"art", "ascii-art"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("/usr/share/games/fortunes"))
    parser.add_argument("--out", type=Path, default=Path("data/fortunes.txt"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    files = sorted(p for p in args.source.glob("*") if p.is_file() and not p.suffix and p.name not in SKIPPED)
    if not files:
        sys.exit(f"error: no fortune files in {args.source}; install them with `apt-get install fortunes`")
    fortunes = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        fortunes.extend(f.strip("\n") for f in re.split(r"^%$", text, flags=re.MULTILINE) if f.strip())
    random.Random(args.seed).shuffle(fortunes)
    corpus = "\n".join(fortunes) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(corpus, encoding="utf-8")
    print(f"wrote {args.out}: {len(corpus)} characters, {len(fortunes)} fortunes from {len(files)} files")


if __name__ == "__main__":
    main()
