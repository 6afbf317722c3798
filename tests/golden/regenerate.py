"""Regenerate the protobuf classes of tests/golden from protos/ (run from the repository root).

python tests/golden/regenerate.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[2]


def generate(out_dir: Path) -> None:
    protos = sorted(str(p.relative_to(ROOT / "protos")) for p in (ROOT / "protos").rglob("*.proto"))
    code = protoc.main(["protoc", f"-I{ROOT / 'protos'}", f"--python_out={out_dir}", *protos])
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
    sys.exit(0)
