"""Render BENCHMARKS.md from benchmarks/results/*.json (the same as ``streamfill bench --report``).

    python scripts/make_benchmarks.py           # rewrite BENCHMARKS.md
    python scripts/make_benchmarks.py --check   # exit 1 when BENCHMARKS.md is not up to date
"""

from __future__ import annotations

import sys
from pathlib import Path

from streamfill.eval.results import render_folder

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    text = render_folder(ROOT / "benchmarks" / "results")
    target = ROOT / "BENCHMARKS.md"
    if "--check" in argv:
        if not target.is_file() or target.read_text() != text:
            print("BENCHMARKS.md is not up to date: run python scripts/make_benchmarks.py", file=sys.stderr)
            return 1
        return 0
    target.write_text(text)
    print(f"wrote {target.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
