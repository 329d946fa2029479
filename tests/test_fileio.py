"""rnnkit.fileio: outputs replace only regular files (devices named by the user are written
directly, ENOSPC is one line), inputs must be regular files, metadata reads are capped."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from rnnkit import fileio
from rnnkit.errors import UserError


@pytest.fixture
def fifo(tmp_path):
    p = tmp_path / "pipe.csv"
    os.mkfifo(p)
    return p


def _listing(d: Path):
    return sorted(p.name for p in d.iterdir())


def test_write_text_replaces_a_regular_file_whole(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    fileio.write_text(target, "new,1\n")
    assert target.read_text() == "new,1\n"
    assert _listing(tmp_path) == ["out.csv"]  # no temp file left


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with fileio.atomic_output(target) as f:
            f.write("half")
            raise RuntimeError("writer died")
    assert target.read_text() == "old"
    assert _listing(tmp_path) == ["out.csv"]


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_outputs_that_are_not_regular_files_are_refused(tmp_path, kind):
    target = tmp_path / "t"
    os.mkfifo(target) if kind == "fifo" else target.mkdir()
    for write in (lambda: fileio.write_text(target, "x"), lambda: fileio.check_output(target),
                  lambda: fileio.write_with(target, lambda name: Path(name).write_text("x"))):
        with pytest.raises(UserError, match=f"is a {kind}; an output must be a regular file"):
            write()
    assert stat.S_ISFIFO(os.stat(target).st_mode) if kind == "fifo" else target.is_dir()


def test_a_character_device_is_written_directly_not_replaced():
    fileio.write_text("/dev/null", "x" * 1000)
    fileio.write_with("/dev/null", lambda f: f.write(b"png bytes"))
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_disk_full_on_a_device_is_one_line():
    with pytest.raises(UserError) as e:
        fileio.write_text("/dev/full", "x" * 100_000)
    assert str(e.value).startswith("/dev/full: write failed") and "\n" not in str(e.value)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)  # still the device


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(UserError, match="folder .* does not exist"):
        fileio.write_text(tmp_path / "no" / "out.csv", "x")


@pytest.mark.parametrize("path,needle", [("/dev/zero", "is a device"), ("/dev/null", "is a device")])
def test_inputs_must_be_regular_files(path, needle):
    with pytest.raises(UserError, match=needle):
        fileio.check_input(path, "data")
    with pytest.raises(UserError, match=needle):
        fileio.read_text_capped(path, "vocabulary")


@pytest.mark.timeout(20)
def test_a_fifo_input_is_refused_without_opening_it(fifo):
    with pytest.raises(UserError, match="is a fifo; data must be a regular file"):
        fileio.check_input(fifo, "data")
    with pytest.raises(UserError, match="is a fifo"):
        fileio.read_bytes_capped(fifo, "config")


def test_inputs_missing_or_directories(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        fileio.check_input(tmp_path / "absent", "data")
    with pytest.raises(UserError, match="is a directory"):
        fileio.check_input(tmp_path, "data")
    assert fileio.check_input("-", "data", allow_stdin=True) == Path("-")


def test_a_symlink_to_a_regular_file_is_read(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    assert fileio.read_text_capped(link, "config") == "{}"
    (tmp_path / "dev").symlink_to("/dev/zero")
    with pytest.raises(UserError, match="is a device"):
        fileio.read_bytes_capped(tmp_path / "dev", "config")


def test_metadata_reads_are_capped(tmp_path):
    p = tmp_path / "vocab.json"
    p.write_bytes(b"x" * 2048)
    assert len(fileio.read_bytes_capped(p, "vocabulary", cap=2048)) == 2048
    with pytest.raises(UserError, match="vocabulary is larger than 2047 bytes, the cap"):
        fileio.read_bytes_capped(p, "vocabulary", cap=2047)
    assert fileio.DEFAULT_CAP == 64 << 20
