from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from rnnkit.data.datasets import safe_extract
from rnnkit.errors import DataError


def _tar(path, entries):
    with tarfile.open(path, "w:gz") as t:
        for name, data, kind in entries:
            info = tarfile.TarInfo(name)
            if kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, data
                t.addfile(info)
            else:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return path


def test_normal_archive_is_extracted(tmp_path):
    a = _tar(tmp_path / "ok.tar.gz", [("d/a.txt", b"hello", "file"), ("b.txt", b"x", "file")])
    out = safe_extract(a, tmp_path / "out")
    assert (out / "d" / "a.txt").read_bytes() == b"hello"


@pytest.mark.parametrize("entries", [
    [("../evil.txt", b"x", "file")],
    [("/tmp/abs-evil.txt", b"x", "file")],
    [("d/../../evil.txt", b"x", "file")],
    [("link", "../../etc/passwd", "sym")],
])
def test_path_traversal_is_refused_and_nothing_is_left(tmp_path, entries):
    a = _tar(tmp_path / "bad.tar.gz", [("fine.txt", b"ok", "file")] + entries)
    with pytest.raises(DataError, match="outside the target"):
        safe_extract(a, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path.parent / "evil.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tar.gz"]


def test_zip_slip_is_refused(tmp_path):
    a = tmp_path / "bad.zip"
    with zipfile.ZipFile(a, "w") as z:
        z.writestr("ok.txt", "fine")
        z.writestr("../../zip-evil.txt", "x")
    with pytest.raises(DataError, match="outside the target"):
        safe_extract(a, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_not_an_archive(tmp_path):
    a = tmp_path / "x.tar.gz"
    a.write_bytes(b"garbage")
    with pytest.raises(DataError, match="not a readable tar or zip"):
        safe_extract(a, tmp_path / "out")
