"""Runs every ``bench_*.py`` in this folder, one after another, in this interpreter."""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common


def main() -> int:
    print(f"# mlagents-fast benchmarks, {time.strftime('%Y-%m-%d')}, {common.machine_line()}")
    only = set(sys.argv[1:])
    for path in sorted(Path(__file__).resolve().parent.glob("bench_*.py")):
        name = path.stem
        if only and name not in only and name.removeprefix("bench_") not in only:
            continue
        print(f"\n## {name}", flush=True)
        importlib.import_module(name).main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
