"""Regenerate the protobuf message modules of ``mlagents_fast.envs.communicator_objects``.

    python protos/generate.py [OUT_ROOT]   (from the repository root; needs grpcio-tools)

Writes ``<OUT_ROOT>/mlagents_fast/envs/communicator_objects/<name>_pb2.py`` and its type stub
``<name>_pb2.pyi`` for every ``protos/mlagents_fast/envs/communicator_objects/<name>.proto``
(OUT_ROOT defaults to ``python/``). The output is committed, so installing the package needs no
protoc; the stubs are what lets mypy see the message classes, which protobuf builds at import.

protoc stamps its own protobuf version into the code and makes the module refuse any older
protobuf runtime. The messages use nothing newer than protobuf 4.21's builder API, so that
check is taken out: the package's ``protobuf`` floor in pyproject.toml is what applies.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = ROOT / "protos"
PACKAGE_DIR = Path("mlagents_fast", "envs", "communicator_objects")

_VERSION_IMPORT = re.compile(
    r"^from google\.protobuf import runtime_version as _runtime_version\n", re.MULTILINE
)
_VERSION_CHECK = re.compile(
    r"^_runtime_version\.ValidateProtobufRuntimeVersion\(\n(?:    .*\n)*?\)\n", re.MULTILINE
)
_VERSION_STAMP = re.compile(r"^# Protobuf Python Version: .*\n", re.MULTILINE)


def proto_files() -> list[str]:
    """The .proto files, relative to protos/ (the import root)."""
    return sorted(
        str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE_DIR).glob("*.proto")
    )


def without_version_check(source: str) -> str:
    """``source`` with protoc's runtime-version stamp and check removed."""
    stripped = _VERSION_CHECK.sub("", _VERSION_IMPORT.sub("", source))
    return _VERSION_STAMP.sub("", stripped)


def generate(out_root: Path) -> list[Path]:
    """Write the message modules under ``out_root``; returns their paths."""
    from grpc_tools import protoc

    code = protoc.main(
        [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"--python_out={out_root}",
            f"--pyi_out={out_root}",
            *proto_files(),
        ]
    )
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")
    written = []
    for proto in proto_files():
        path = out_root / Path(proto).with_name(Path(proto).stem + "_pb2.py")
        path.write_text(without_version_check(path.read_text()))
        written.append(path)
        written.append(path.with_suffix(".pyi"))
    return written


if __name__ == "__main__":
    for path in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "python"):
        print(path)
