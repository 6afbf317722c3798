"""The settings are a leaf and the command line sits on top of them, never the reverse.

Two checks: importing ``mlagents_fast.trainers.settings`` in a fresh interpreter loads none of
the command line, trainers or environments; and, read statically from the sources (imports
inside functions included), no module imports a module above it in the order
exceptions < trainer exceptions < settings (converter, config file < environment parameters, trainer settings
< run options < the package) < cli_utils < learn, and nothing outside the command line
imports the command line.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import mlagents_fast

PACKAGE_DIR = Path(mlagents_fast.__file__).parent

# Bottom to top; a module may import only modules of lower layers among these (and, for the
# settings and cli_utils, nothing else of mlagents_fast).
LAYERS = [
    ["mlagents_fast.exceptions"],
    ["mlagents_fast.trainers.exception"],
    ["mlagents_fast.trainers.settings.converter", "mlagents_fast.trainers.settings.config_file"],
    [
        "mlagents_fast.trainers.settings.environment_parameters",
        "mlagents_fast.trainers.settings.trainer_settings",
    ],
    ["mlagents_fast.trainers.settings.run_options"],
    ["mlagents_fast.trainers.settings"],
    ["mlagents_fast.trainers.cli_utils"],
    ["mlagents_fast.trainers.learn"],
]
RANK = {module: rank for rank, layer in enumerate(LAYERS) for module in layer}
COMMAND_LINE = {
    "mlagents_fast.trainers.cli_utils",
    "mlagents_fast.trainers.learn",
    # mlagents-fast-run-experiment: a command line over learn's run_cli.
    "mlagents_fast.trainers.run_experiment",
}
# Package __init__ files that only name their package (imported on the way to any module).
PACKAGE_ROOTS = {"mlagents_fast", "mlagents_fast.trainers"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported mlagents_fast module, only under TYPE_CHECKING) for every import in the file,
    inside functions too. ``from pkg import name`` counts as pkg.name when that is a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_checking_nodes = {
        id(child)
        for node in ast.walk(tree)
        if _is_type_checking_block(node)
        for child in ast.walk(node)
    }
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                if _source_of(candidate) is not None:
                    names.append(candidate)
            if len(names) > 1:
                names = names[1:]  # the submodules themselves, not their package
        found += [
            (name, id(node) in type_checking_nodes)
            for name in names
            if name == "mlagents_fast" or name.startswith("mlagents_fast.")
        ]
    return found


def _source_of(module: str) -> Path | None:
    relative = Path(*module.split("."))
    for candidate in (relative.with_suffix(".py"), relative / "__init__.py"):
        path = PACKAGE_DIR.parent / candidate
        if path.exists():
            return path
    return None


def _all_modules() -> dict[str, Path]:
    return {_module_name(path): path for path in PACKAGE_DIR.rglob("*.py")}


def test_every_layered_module_exists():
    modules = _all_modules()
    assert set(RANK) <= set(modules), set(RANK) - set(modules)


def test_no_module_imports_a_module_above_it():
    problems = []
    for module, rank in RANK.items():
        if module in COMMAND_LINE and rank == len(LAYERS) - 1:
            continue  # the top: may import anything
        for imported, type_checking_only in _imports(_source_of(module)):
            if imported in PACKAGE_ROOTS:
                continue
            if imported in RANK:
                if RANK[imported] >= rank and imported != module:
                    problems.append(f"{module} imports {imported} (same layer or above)")
            elif type_checking_only and imported.startswith("mlagents_fast.envs."):
                continue  # an interface named in annotations only; the envs never import us
            else:
                problems.append(f"{module} imports {imported}, which is not below it")
    assert problems == []


def test_nothing_outside_the_command_line_imports_it():
    problems = [
        f"{module} imports {imported}"
        for module, path in _all_modules().items()
        if module not in COMMAND_LINE
        for imported, _ in _imports(path)
        if imported in COMMAND_LINE
    ]
    assert problems == [], "import load_config etc. from mlagents_fast.trainers.settings"


def test_importing_the_settings_loads_no_command_line_trainer_or_environment():
    probe = (
        "import json, sys\n"
        "import mlagents_fast.trainers.settings\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('mlagents_fast')"
        " or m in ('argparse', 'torch'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(json.loads(done.stdout))
    allowed = PACKAGE_ROOTS | {
        "mlagents_fast._native",  # loaded by the package itself
        *(module for module in RANK if RANK[module] <= RANK["mlagents_fast.trainers.settings"]),
    }
    assert loaded <= allowed, sorted(loaded - allowed)
    assert "mlagents_fast.trainers.cli_utils" not in loaded
    assert "argparse" not in loaded and "torch" not in loaded
