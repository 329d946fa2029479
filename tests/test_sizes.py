"""Files in src/rnnkit stay under 500 lines and functions under 80, except those that
docs/architecture.md lists, with its reasons, in "Long files and functions".

Both ways: a new long file or function fails, and so does a listed one that is no longer
long (so the list stays true and only shrinks). A function's length runs from its ``def``
line to its last line; methods and nested functions count on their own, named
``path:Class.method`` / ``path:outer.inner``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "rnnkit"
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80


def long_files_and_functions(src: Path = SRC) -> dict:
    """``{"path" or "path:qualname": lines}`` of everything over the limits (paths relative to ``src``)."""
    found = {}
    for path in sorted(src.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(src).as_posix()
        if len(text.splitlines()) > MAX_FILE_LINES:
            found[rel] = len(text.splitlines())

        def walk(node, prefix):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    n = child.end_lineno - child.lineno + 1
                    if n > MAX_FUNCTION_LINES:
                        found[f"{rel}:{prefix}{child.name}"] = n
                    walk(child, f"{prefix}{child.name}.")
                elif isinstance(child, ast.ClassDef):
                    walk(child, f"{prefix}{child.name}.")
                else:
                    walk(child, prefix)

        walk(ast.parse(text), "")
    return found


def documented_exceptions() -> set:
    """The entries (first backticked word of each bullet) of the architecture doc's section."""
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    m = re.search(r"^## Long files and functions\n(.*?)(?=^## |\Z)", doc, re.S | re.M)
    assert m, 'docs/architecture.md has no "## Long files and functions" section'
    return set(re.findall(r"^[-*] `([^`]+)`", m.group(1), re.M))


def test_long_files_and_functions_are_the_documented_ones():
    found = long_files_and_functions()
    listed = documented_exceptions()
    new = {k: v for k, v in found.items() if k not in listed}
    gone = sorted(listed - set(found))
    assert not new, (f"over {MAX_FILE_LINES} lines per file / {MAX_FUNCTION_LINES} per function: {new}; split them, "
                     f"or explain them in docs/architecture.md's 'Long files and functions'")
    assert not gone, f"no longer long, remove from docs/architecture.md's 'Long files and functions': {gone}"


def test_the_scan_names_methods_and_nested_functions(tmp_path):
    pkg = tmp_path / "rnnkit"
    pkg.mkdir()
    body = "\n".join(f"        x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (pkg / "m.py").write_text(f"class C:\n    def ok(self):\n        pass\n\n    def big(self):\n{body}\n\n\n"
                              f"def outer():\n    def inner():\n{body}\n    return inner\n")
    (pkg / "long.py").write_text("\n" * (MAX_FILE_LINES + 1))
    assert long_files_and_functions(pkg) == {"long.py": MAX_FILE_LINES + 1, "m.py:C.big": MAX_FUNCTION_LINES + 1,
                     "m.py:outer": MAX_FUNCTION_LINES + 3, "m.py:outer.inner": MAX_FUNCTION_LINES + 1}
