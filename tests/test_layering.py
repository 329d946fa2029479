"""The package's layers never import upward (shared/DESIGN.md), checked by scanning imports.

    reference   numpy + standard library only
    layers      torch only (no other rnnkit layer)
    data        no models: never layers/tasks/training/cli
    tasks, diagnostics   build on reference/layers/data; never training/cli
    training    never cli; the only place Lightning is imported
    serve       the predictors only (no model code): never layers/tasks/data/training/cli
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
    # the HTTP server runs models only through the predictor API (rnnkit.load)
    "serve": (None, {"reference", "layers", "data", "tasks", "diagnostics", "training", "cli", "export"}),
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
