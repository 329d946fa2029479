"""The package's layers never import upward (shared/DESIGN.md), checked by scanning imports.

    reference   numpy + standard library only
    layers      torch only (no other rnnkit layer)
    data        no models: never layers/tasks/training/cli
    tasks, diagnostics   build on reference/layers/data; never training/cli
    training    never cli; the only place Lightning is imported
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
    "reference": ({"numpy"}, {"layers", "data", "tasks", "diagnostics", "training", "cli", "export"}),
    "layers": ({"torch"}, {"reference", "data", "tasks", "diagnostics", "training", "cli", "export"}),
    "data": (None, {"layers", "tasks", "diagnostics", "training", "cli", "export"}),
    "tasks": (None, {"training", "cli", "export"}),
    "diagnostics": (None, {"training", "cli", "export"}),
    "training": (None, {"cli"}),
}


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


# ------------------------------------------------------------------------------------------
# no import cycles, of any length
#
# Every import counts, at module level or inside a function: a lazy import (used here to keep
# torch and Lightning out of `rnnkit --help`) changes *when* a module loads, not that the two
# modules need each other, so it cannot excuse a cycle. Only imports under
# ``if TYPE_CHECKING:`` are left out (they never run). Importing ``a.b.c`` is an edge to
# ``a.b.c`` only, not to the packages above it (Python loads those first, but a package's
# ``__init__`` re-exporting its own submodules is not a cycle of the design).

# Known cycles, as the edges that close them; each must still exist (so the list only
# shrinks) and nothing else may form a cycle.
KNOWN_CYCLE_EDGES = {
    # issue #18.1: the run directory's lifecycle is split between run.py and numpy_engine.py,
    # which import each other (lazily); the `rundir` work gives it one owner and drops this
    ("rnnkit.training.numpy_engine", "rnnkit.training.run"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_nodes(node: ast.AST):
    """Every node below ``node`` except the bodies of ``if TYPE_CHECKING:`` blocks."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            for other in child.orelse:
                yield other
                yield from _runtime_nodes(other)
            continue
        yield child
        yield from _runtime_nodes(child)


def import_graph() -> dict:
    """``{module: {imported rnnkit modules}}`` over every module of the package."""
    paths = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        edges = set()
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(package[:len(package) - (node.level - 1)] + ([node.module] if node.module else [])) \
                    if node.level else (node.module or "")
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in paths:  # `import rnnkit.x.y as z`: the longest known prefix
                    t = t.rpartition(".")[0]
                if t and t != name:
                    edges.add(t)
        graph[name] = edges
    return graph


def find_cycles(graph: dict) -> list:
    """One cycle (as a module path ``[a, b, ..., a]``) per strongly connected component with
    more than one module: Tarjan's depth-first search, iterative."""
    index, low, on_stack, stack, sccs, counter = {}, {}, set(), [], [], [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                scc = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    scc.append(w)
                    if w == v:
                        break
                if len(scc) > 1:
                    sccs.append(set(scc))
    return [_cycle_in(graph, scc) for scc in sccs]


def _cycle_in(graph: dict, scc: set) -> list:
    """A shortest cycle through the first module of ``scc`` (breadth-first inside it)."""
    start = min(scc)
    parent, frontier = {start: None}, [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & scc):
                if w == start:
                    path = [v]
                    while parent[path[-1]] is not None:
                        path.append(parent[path[-1]])
                    return [start] + path[::-1][1:] + [start] if len(path) > 1 else [start, v, start]
                if w not in parent:
                    parent[w] = v
                    nxt.append(w)
        frontier = nxt
    return sorted(scc)


def test_no_import_cycles():
    graph = import_graph()
    for a, b in KNOWN_CYCLE_EDGES:
        assert b in graph.get(a, ()), (f"{a} no longer imports {b}: remove the edge from KNOWN_CYCLE_EDGES "
                                       f"in tests/test_layering.py")
        graph[a] = graph[a] - {b}
    cycles = [" -> ".join(c) for c in find_cycles(graph)]
    assert cycles == [], "import cycles:\n" + "\n".join(cycles)


def test_cycle_finder_sees_long_cycles_and_ignores_chains():
    g = {"a": {"b"}, "b": {"c"}, "c": {"d"}, "d": {"a"}, "e": {"a"}, "f": set()}
    assert find_cycles(g) == [["a", "b", "c", "d", "a"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    two = find_cycles({"x": {"y"}, "y": {"x", "z"}, "z": {"z2"}, "z2": {"z"}})
    assert sorted(map(tuple, two)) == [("x", "y", "x"), ("z", "z2", "z")]
