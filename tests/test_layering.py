"""The package's layers never import upward (shared/DESIGN.md), checked by scanning imports.

    reference   numpy + standard library only
    layers      torch only (no other rnnkit layer)
    data        no models: never layers/tasks/training/cli
    tasks, diagnostics   build on reference/layers/data; never training/cli
    training    never cli; the only place Lightning is imported
    serve       the predictors only (no model code): never layers/tasks/data/training/cli

and no two modules import each other, directly or through others (lazy imports inside
functions count; ``if TYPE_CHECKING:`` imports do not).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rnnkit"
STDLIB = set(sys.stdlib_module_names) | {"__future__"}

RULES = {
    # package: (allowed third-party top-level modules or None for any, forbidden rnnkit subpackages)
    "reference": ({"numpy"}, {"layers", "data", "tasks", "diagnostics", "training", "cli", "export", "predictors"}),
    "layers": ({"torch"}, {"reference", "data", "tasks", "diagnostics", "training", "cli", "export", "predictors"}),
    "data": (None, {"reference", "layers", "tasks", "diagnostics", "training", "cli", "export", "predictors"}),
    "tasks": (None, {"training", "cli", "export", "predictors"}),
    "diagnostics": (None, {"training", "cli", "export"}),
    "training": (None, {"cli"}),
    # the HTTP server runs models only through the predictor API (rnnkit.load)
    "serve": (None, {"reference", "layers", "data", "tasks", "diagnostics", "training", "cli", "export"}),
    # what rnnkit.load returns: never Lightning (training/), never the CLI or the server
    "predictors": (None, {"training", "cli", "serve"}),
}
# The inference verbs only parse, call a predictor and print: no model building, decoding or
# metrics of their own (those live next to the task, in predictors/ and tasks/).
INFERENCE_VERBS = ("sample", "predict", "forecast", "backtest", "transcribe", "translate", "evaluate")


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parts = path.relative_to(SRC.parent).with_suffix("").parts  # ("rnnkit", "training", "run")
    package = list(parts[:-1])  # the package a relative import starts from (also for __init__.py)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                yield ".".join(base + ([node.module] if node.module else []))
            else:
                yield node.module or ""


def _violations(package: str):
    allowed, forbidden = RULES[package]
    out = []
    for path in sorted((SRC / package).rglob("*.py")):
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "rnnkit":
                parts = name.split(".")
                if len(parts) > 1 and parts[1] in forbidden:
                    out.append(f"{path.relative_to(SRC)} imports {name}")
            elif allowed is not None and top not in STDLIB and top not in allowed:
                out.append(f"{path.relative_to(SRC)} imports {name}")
            elif top == "lightning" and package != "training":
                out.append(f"{path.relative_to(SRC)} imports {name} (Lightning belongs in training/)")
    return out


@pytest.mark.parametrize("package", sorted(p for p in RULES if (SRC / p).is_dir()))
def test_layers_never_import_upward(package):
    assert _violations(package) == []


@pytest.mark.parametrize("verb", INFERENCE_VERBS)
def test_inference_verbs_are_thin(verb):
    path = SRC / "cli" / f"{verb}.py"
    bad = [name for name in _imports(path)
           if name.split(".")[0] in ("torch", "lightning", "sklearn", "jiwer", "sacrebleu")
           or (name.startswith("rnnkit.") and name.split(".")[1] in ("tasks", "layers", "training", "reference"))]
    assert bad == [], f"cli/{verb}.py imports {bad}: inference code belongs in predictors/ or tasks/"


# -- no import cycles, of any length, between the package's modules ---------------------------
def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_nodes(tree: ast.AST):
    """Every node, function bodies included (a lazy import is still a dependency), except what
    sits under ``if TYPE_CHECKING:``."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    return [n for n in ast.walk(tree) if id(n) not in skip]


def import_graph():
    """module -> the rnnkit modules it imports (``from pkg import mod`` counts as ``pkg.mod``)."""
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        deps = set()
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(package[:len(package) - (node.level - 1)] + ([node.module] if node.module else [])) \
                    if node.level else (node.module or "")
                # `from pkg import x`: the module pkg.x, else a name defined in pkg
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                # a module not in the tree (another package, or one still to come, e.g. a lazy
                # import of rnnkit.export before it exists) is no edge, and never its parent's
                if target in modules and target != name:
                    deps.add(target)
        graph[name] = deps
    return graph


def import_cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_the_cycle_finder_finds_a_cycle():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    graph = import_graph()
    assert "rnnkit.training.rundir" in graph["rnnkit.training.numpy_engine"]
    assert import_cycles(graph) == []


def test_the_cycle_finder_sees_long_cycles_and_ignores_chains():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"d"}, "d": {"a"}, "e": {"a"}, "f": set()}) == [["a", "b", "c", "d"]]
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    two = import_cycles({"x": {"y"}, "y": {"x", "z"}, "z": {"z2"}, "z2": {"z"}})
    assert sorted(two) == [["x", "y"], ["z", "z2"]]
