"""Shared fixtures: one torch thread (the 2-core thread trap), an isolated cache, tiny corpora."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.util import make_text

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    try:
        import torch
    except ImportError:  # the torch-free tests run without it
        yield
        return
    torch.set_num_threads(1)
    yield


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Encoded corpora and downloads go to a temporary cache, never the user's."""
    old = os.environ.get("RNNKIT_CACHE_DIR")
    os.environ["RNNKIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("rnnkit-cache"))
    yield
    if old is None:
        os.environ.pop("RNNKIT_CACHE_DIR", None)
    else:
        os.environ["RNNKIT_CACHE_DIR"] = old


@pytest.fixture
def tiny_corpus(tmp_path) -> Path:
    p = tmp_path / "tiny.txt"
    p.write_text(make_text(), encoding="utf-8")
    return p


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """Tiny real checkpoints of every task (tests/tiny.py), trained once per session."""
    from tests.tiny import train_all

    return train_all(tmp_path_factory.mktemp("tiny"))


# fixtures shared by the package directories (tests/fixtures/ holds the data builders)
from tests.fixtures.asr import digit_folder  # noqa: E402,F401
from tests.fixtures.sentiment import reviews_csv  # noqa: E402,F401
from tests.fixtures.seq2seq import toy_files  # noqa: E402,F401
