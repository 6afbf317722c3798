"""The module graph of mlagents_fast: every module imports, no import cycle, and each module
imports only its own layer or the layers below it.

The graph is read from the sources (``ast``), so it includes imports inside functions (they
run later, but they are dependencies all the same) and leaves out ``if TYPE_CHECKING:``
imports (annotations only). Importing ``a.b.c`` also runs the ``__init__`` of ``a`` and
``a.b``: those package edges count for the layers.

The order inside the settings package is checked by tests/test_settings_layers.py. Layers,
lowest first (a module belongs to the layer of its longest matching prefix):
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "python"
PACKAGE = "mlagents_fast"

LAYERS: list[tuple[str, list[str]]] = [
    # The Rust extension and what every layer shares.
    (
        "core",
        [
            "mlagents_fast",
            "mlagents_fast._native",
            "mlagents_fast.exceptions",
            "mlagents_fast.atomic_io",
        ],
    ),
    # Thin wrappers of Rust data paths: numpy in, numpy out; no torch, no environment.
    (
        "rust-backed data",
        [
            "mlagents_fast.trainers.buffer",
            "mlagents_fast.trainers.buffer_columns",
            "mlagents_fast.trainers.replay_buffer",
        ],
    ),
    # The environment API (ML-Agents' mlagents_envs): never the trainers.
    ("envs", ["mlagents_fast.envs"]),
    # The run's settings: a leaf of the trainers, read by the CLI, never reading it.
    ("settings", ["mlagents_fast.trainers.exception", "mlagents_fast.trainers.settings"]),
    # Networks, policies, optimizers, trainers, env managers, the trainer controller; the torch
    # device helpers they share (ML-Agents' mlagents.torch_utils).
    ("trainers", ["mlagents_fast.trainers", "mlagents_fast.torch_utils"]),
    # Command-line programs: they may use everything, nothing uses them.
    (
        "programs",
        [
            "mlagents_fast.envs.cli",
            "mlagents_fast.trainers.cli_utils",
            "mlagents_fast.trainers.learn",
            "mlagents_fast.trainers.run",
            "mlagents_fast.trainers.run_experiment",
            "mlagents_fast.trainers.upgrade_config",
        ],
    ),
]
__doc__ += "".join(f"\n- {name}: {', '.join(prefixes)}" for name, prefixes in LAYERS)

# Dependencies an import inside a function may put off: slow to import or optional.
DEFERRABLE = {
    "attr",
    "cattrs",
    "cloudpickle",
    "google",
    "grpc",
    "gymnasium",
    "matplotlib",
    "multiprocessing",
    "onnx",
    "onnxruntime",
    "pettingzoo",
    "PIL",
    "ray",
    "rich",
    "tensorboard",
    "torch",
    "yaml",
}
# Modules other branches are rewriting right now (session 3), whose imports inside functions
# are moved when those land. This list only shrinks.
DEFERRED_IMPORTS_PENDING = {"mlagents_fast.trainers.run"}
# Optional extras: a module that needs one may fail to import where it is not installed.
OPTIONAL = {"gymnasium", "pettingzoo", "ray", "onnxruntime"}


@dataclass(frozen=True)
class Import:
    target: str  # a module of the package (the longest prefix of the imported name)
    line: int
    at_module_level: bool


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool
    imports: tuple[Import, ...]
    external_at_module_level: frozenset[str]


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imported_names(node: ast.stmt, package: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
        module = f"{base}.{node.module}" if node.module else base
    else:
        module = node.module or ""
    return [module] + [f"{module}.{alias.name}" for alias in node.names]


class _ImportScan:
    """The imports of one module: of the package (with their line and whether they run at
    import time) and, at module level, of other distributions."""

    def __init__(self, name: str, package: str, owning_module) -> None:
        self.name = name
        self.package = package
        self.owning_module = owning_module
        self.found: list[Import] = []
        self.external: set[str] = set()

    def visit(self, node: ast.AST, module_level: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if _is_type_checking_block(child):
                assert isinstance(child, ast.If)
                for statement in child.orelse:
                    self.visit_statement(statement, module_level)
                continue
            self.visit_statement(child, module_level)

    def visit_statement(self, child: ast.AST, module_level: bool) -> None:
        if isinstance(child, ast.Import | ast.ImportFrom):
            imported = _imported_names(child, self.package)
            targets = {self.owning_module(n) for n in imported if n.split(".")[0] == PACKAGE}
            for target in sorted(t for t in targets if t and t != self.name):
                self.found.append(Import(target, child.lineno, module_level))
            if module_level and not getattr(child, "level", 0):
                tops = imported if isinstance(child, ast.Import) else imported[:1]
                self.external.update(n.split(".")[0] for n in tops)
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            self.visit(child, False)
        else:
            self.visit(child, module_level)


def read_modules(source: Path = SOURCE) -> dict[str, Module]:
    """Every module under ``source/mlagents_fast`` with the imports it makes."""
    paths = {}
    for path in sorted((source / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(source).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        paths[".".join(parts[:-1] if is_package else parts)] = (path, is_package)

    def owning_module(name: str) -> str | None:
        while name and name not in paths:
            name = name.rpartition(".")[0]
        return name or None

    modules = {}
    for name, (path, is_package) in paths.items():
        package = name if is_package else name.rpartition(".")[0]
        scan = _ImportScan(name, package, owning_module)
        scan.visit(ast.parse(path.read_text(encoding="utf-8")), module_level=True)
        scan.external.discard(PACKAGE)
        modules[name] = Module(name, path, is_package, tuple(scan.found), frozenset(scan.external))
    return modules


def layer_of(module: str) -> int:
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or (prefix != PACKAGE and module.startswith(prefix + "."))
            if matches and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    assert best is not None, f"{module} is in no layer"
    return best[0]


def parent_packages(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


class Graph:
    def __init__(self, modules: dict[str, Module]):
        self.modules = modules

    def explicit(self, module: str, module_level_only: bool = False) -> set[str]:
        return {
            i.target
            for i in self.modules[module].imports
            if i.at_module_level or not module_level_only
        }

    def edges(self, module: str, module_level_only: bool = False) -> set[str]:
        """What importing ``module`` runs directly: its imports and their parent packages,
        and its own parent packages."""
        targets = self.explicit(module, module_level_only)
        for target in list(targets) + [module]:
            targets.update(p for p in parent_packages(target) if p in self.modules)
        targets.discard(module)
        return targets

    @functools.cache  # noqa: B019 (one Graph per test run)
    def closure(self, module: str, module_level_only: bool = False) -> frozenset[str]:
        seen, stack = {module}, [module]
        while stack:
            for target in self.edges(stack.pop(), module_level_only):
                if target not in seen:
                    seen.add(target)
                    stack.append(target)
        return frozenset(seen)

    def cycles(self) -> list[list[str]]:
        """Strongly connected groups of more than one module over explicit imports."""
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        groups: list[list[str]] = []

        def connect(node: str) -> None:
            index[node] = low[node] = len(index)
            stack.append(node)
            on_stack.add(node)
            for target in sorted(self.explicit(node)):
                if target not in index:
                    connect(target)
                    low[node] = min(low[node], low[target])
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))

        for node in sorted(self.modules):
            if node not in index:
                connect(node)
        return groups

    def layer_violations(self) -> list[str]:
        """Imports of a module in a higher layer; a package counts as the modules its
        ``__init__`` loads."""
        found = []
        for name in sorted(self.modules):
            own = layer_of(name)
            for target in sorted(self.edges(name)):
                loaded = (
                    [m for m in self.closure(target) if not self.modules[m].is_package]
                    if self.modules[target].is_package
                    else [target]
                )
                above = sorted(m for m in loaded if m != name and layer_of(m) > own)
                if above:
                    found.append(
                        f"{name} ({LAYERS[own][0]}) -> {target}: loads {', '.join(above[:3])} "
                        f"({LAYERS[layer_of(above[0])][0]})"
                    )
        return found

    def deferred_for_nothing(self) -> list[str]:
        """Imports inside functions that defer no slow or optional dependency and break no
        cycle: they belong at the top of the module."""
        found = []
        for name in sorted(self.modules):
            already = self.deferred_dependencies(name)
            for imported in self.modules[name].imports:
                if imported.at_module_level:
                    continue
                target = imported.target
                deferred = self.deferred_dependencies(target) - already
                breaks_cycle = name in self.closure(target, module_level_only=True)
                if not deferred and not breaks_cycle:
                    found.append(f"{name}:{imported.line} imports {target}")
        return found

    def deferred_dependencies(self, module: str) -> set[str]:
        return {
            dependency
            for loaded in self.closure(module, module_level_only=True)
            for dependency in self.modules[loaded].external_at_module_level & DEFERRABLE
        }


@pytest.fixture(scope="module")
def graph() -> Graph:
    return Graph(read_modules())


def test_every_module_is_in_the_graph_and_in_a_layer(graph):
    assert len(graph.modules) > 100
    assert "mlagents_fast.trainers.trainer_controller" in graph.modules
    for name in graph.modules:
        layer_of(name)


def test_every_module_imports():
    """All modules import in one interpreter (an optional extra may be missing)."""
    names = sorted(read_modules())
    code = (
        "import importlib, sys\n"
        f"optional = {sorted(OPTIONAL)!r}\n"
        "failed = []\n"
        f"for name in {names!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ModuleNotFoundError as err:\n"
        "        if (err.name or '').split('.')[0] not in optional:\n"
        "            failed.append(f'{name}: {err!r}')\n"
        "    except Exception as err:\n"
        "        failed.append(f'{name}: {err!r}')\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]


def test_no_import_cycle(graph):
    assert graph.cycles() == []


def test_every_import_points_to_the_same_layer_or_below(graph):
    assert graph.layer_violations() == []


def test_imports_inside_functions_defer_something(graph):
    """An import inside a function is for a slow or optional dependency (torch, protobuf,
    ray...) or to break a cycle; any other belongs at the top of its module."""
    found = graph.deferred_for_nothing()
    assert [f for f in found if f.split(":")[0] not in DEFERRED_IMPORTS_PENDING] == []


@pytest.mark.parametrize(
    ("modules", "code"),
    [
        ({"envs.a": "from mlagents_fast.trainers import b", "trainers.b": ""}, "layer"),
        ({"trainers.settings.s": "import mlagents_fast.trainers.c", "trainers.c": ""}, "layer"),
        (
            {"trainers.a": "import mlagents_fast.trainers.b", "trainers.b": "from . import a"},
            "cycle",
        ),
        (
            {"trainers.a": "def f():\n    import mlagents_fast.trainers.b", "trainers.b": ""},
            "deferred",
        ),
    ],
)
def test_the_checks_catch_what_they_forbid(tmp_path, modules, code):
    """Each check fails on a small package that breaks its rule."""
    package = tmp_path / PACKAGE
    for name, text in {"__init__": "", **modules}.items():
        path = package.joinpath(*name.split(".")).with_suffix(".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        for folder in path.relative_to(package).parents:
            (package / folder / "__init__.py").touch()
        path.write_text(text)
    small = Graph(read_modules(tmp_path))
    found = {
        "layer": small.layer_violations,
        "cycle": small.cycles,
        "deferred": small.deferred_for_nothing,
    }[code]()
    assert found


_LAYER_PROBE = """
import importlib, sys
for name in {names!r}:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m.startswith({forbidden!r}))
print(loaded)
sys.exit(1 if loaded else 0)
"""


@pytest.mark.parametrize(
    ("importing", "forbidden"),
    [
        ("mlagents_fast.envs", ("mlagents_fast.trainers", "torch")),
        ("mlagents_fast.trainers.buffer", ("mlagents_fast.envs", "torch")),
    ],
)
def test_importing_a_layer_loads_nothing_above_it(importing, forbidden):
    """At run time too: the environment modules load no trainer module and no torch, the
    buffer neither environments nor torch (tests/test_settings_layers.py probes the
    settings)."""
    names = sorted(
        name
        for name in read_modules()
        if (name == importing or name.startswith(importing + "."))
        and layer_of(name) == layer_of(importing)
    )
    probe = _LAYER_PROBE.format(names=names, forbidden=forbidden)
    run = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=False
    )
    assert run.returncode == 0, f"importing {importing} loaded: {run.stdout}{run.stderr[-2000:]}"
