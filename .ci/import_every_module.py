"""Import every module of mlagents_fast: a plain ``pip install .`` must cover them all.

Run by .ci/newcomer with the fresh venv's Python. A module may fail only for want of a package
of one of the project's optional extras (``gym``: gymnasium); any other failure is listed and
the exit status is 1.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
import tomllib
import traceback
from pathlib import Path


def optional_packages(pyproject: Path) -> set[str]:
    """Import names of the non-dev extras' packages (their distribution names, normalised)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    names = set()
    for extra, requirements in project.get("optional-dependencies", {}).items():
        if extra == "dev":
            continue
        for requirement in requirements:
            name = re.match(r"[A-Za-z0-9_.\-]+", requirement)[0]
            names.add(name.lower().replace("-", "_"))
    return names


def missing_optional(err: BaseException | None, optional: set[str]) -> str | None:
    """The optional package whose absence caused ``err`` (directly or as its cause), if any."""
    while err is not None:
        if isinstance(err, ModuleNotFoundError):
            top = (err.name or "").split(".")[0]
            if top in optional:
                return top
        err = err.__cause__ or err.__context__
    return None


def main() -> int:
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    optional = optional_packages(pyproject)
    import mlagents_fast

    failures = []
    skipped = []
    count = 1
    for module in pkgutil.walk_packages(mlagents_fast.__path__, "mlagents_fast."):
        count += 1
        try:
            importlib.import_module(module.name)
        except Exception as err:  # noqa: BLE001 (report every failing module, not the first)
            missing = missing_optional(err, optional)
            if missing is not None:
                skipped.append(f"{module.name} (needs the optional {missing})")
            else:
                failures.append(f"{module.name}: {err!r}\n{traceback.format_exc()}")
    print(f"imported {count - len(failures) - len(skipped)} of {count} mlagents_fast modules")
    for line in skipped:
        print(f"  not imported: {line}")
    for line in failures:
        print(f"  FAILED: {line}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
