"""A plain ``pip install .`` brings every package the code imports.

Every third-party import in python/mlagents_fast must come from a distribution named in
``[project.dependencies]``, or in a non-dev extra for a module that says how to get it (the
``gym`` extra's gymnasium); nothing the package imports may live only in the ``dev`` extra.
(.ci/newcomer imports every module in a venv made by a plain install, which checks the same
from the other side.)
"""

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from repo_paths import REPO_ROOT

PACKAGE = Path(REPO_ROOT) / "python" / "mlagents_fast"
PROJECT = tomllib.loads((Path(REPO_ROOT) / "pyproject.toml").read_text())["project"]


def distribution_name(requirement):
    return re.match(r"[A-Za-z0-9_.\-]+", requirement)[0].lower().replace("_", "-")


def imported_top_level_names(path):
    """(top-level module name, line) of every absolute import in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], node.lineno


def third_party_imports():
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for name, line in imported_top_level_names(path):
            if name in stdlib or name == "mlagents_fast":
                continue
            found.setdefault(name, []).append(f"{path.relative_to(REPO_ROOT)}:{line}")
    return found


def test_every_imported_package_is_a_runtime_dependency():
    runtime = {distribution_name(r) for r in PROJECT["dependencies"]}
    extras = {
        distribution_name(r)
        for extra, requirements in PROJECT["optional-dependencies"].items()
        if extra != "dev"
        for r in requirements
    }
    providers = metadata.packages_distributions()
    undeclared = {}
    for name, where in third_party_imports().items():
        distributions = {d.lower().replace("_", "-") for d in providers.get(name, [name])}
        if not distributions & (runtime | extras):
            undeclared[name] = (sorted(distributions), where[:3])
    assert not undeclared, f"imported but not in [project.dependencies]: {undeclared}"


def test_what_the_readme_promises_is_a_runtime_dependency():
    runtime = {distribution_name(r) for r in PROJECT["dependencies"]}
    # Training (torch), the final .onnx (onnx), `tensorboard --logdir results`, the learning
    # curves (matplotlib), the terminal progress bars (rich).
    assert {"torch", "onnx", "tensorboard", "matplotlib", "rich"} <= runtime
    dev_only = {distribution_name(r) for r in PROJECT["optional-dependencies"]["dev"]}
    assert not {"onnx", "tensorboard", "matplotlib", "rich"} & dev_only


def test_python_versions_are_not_capped():
    # 3.11, 3.12 and 3.13 (and later) are installable.
    assert PROJECT["requires-python"] == ">=3.11"
