"""Files users hand rnnkit, and files rnnkit writes for them: one home for both rules.

* **Outputs** (``--output``, ``--plot``, exported files) are written whole to a temporary
  file in the target's directory and renamed into place, so a reader never sees half a file
  and a failed run leaves nothing behind. Only a regular file (or a new path) is replaced:
  a character device the user named (``/dev/stdout``) is written directly; anything else
  (a directory, a fifo, a socket, a block device) is refused. Write errors (ENOSPC, EACCES)
  become one :class:`~rnnkit.errors.UserError` line naming the file.
* **Inputs** must be regular files (or ``-`` for stdin where a verb accepts it): a fifo, a
  device or a directory is refused before anything reads it, so nothing hangs on a fifo or
  reads ``/dev/zero`` until memory runs out. Small metadata files are read with a cap.

torch-free: NumPy-free too; the checkpoint format and the CLI both use it.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Callable, Iterator, Union

from .errors import UserError

PathLike = Union[str, "os.PathLike[str]"]
MiB = 1 << 20
# metadata (config JSON, vocabularies, word lists): larger is not something rnnkit wrote
DEFAULT_CAP = 64 * MiB


def _why(e: OSError) -> str:
    return e.strerror or e.__class__.__name__


def check_input(path: PathLike, what: str = "input", allow_stdin: bool = False) -> Path:
    """``path`` as a Path after checking it is a readable regular file (``-`` = stdin when
    ``allow_stdin``); otherwise a one-line :class:`UserError` naming ``what`` and the file."""
    p = Path(path)
    if allow_stdin and str(path) == "-":
        return p
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise UserError(f"{p}: no such file ({what})") from None
    except OSError as e:
        raise UserError(f"{p}: cannot read {what} ({_why(e)})") from None
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"{p}: is a directory, not a file ({what})")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a fifo" if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise UserError(f"{p}: is {kind}; {what} must be a regular file")
    return p


def read_bytes_capped(path: PathLike, what: str = "file", cap: int = DEFAULT_CAP) -> bytes:
    """The bytes of a regular file of at most ``cap`` bytes (checked before and while reading)."""
    p = check_input(path, what)
    try:
        with open(p, "rb") as f:
            data = f.read(cap + 1)
    except OSError as e:
        raise UserError(f"{p}: cannot read {what} ({_why(e)})") from None
    if len(data) > cap:
        size = f"{cap // MiB} MB" if cap >= MiB else f"{cap} bytes"
        raise UserError(f"{p}: {what} is larger than {size}, the cap for such files; not a file rnnkit wrote")
    return data


def read_text_capped(path: PathLike, what: str = "file", cap: int = DEFAULT_CAP, encoding: str = "utf-8") -> str:
    data = read_bytes_capped(path, what, cap)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: {what} is not {encoding} text (byte {e.start})") from None


def _output_kind(p: Path) -> str:
    """'new', 'file' or 'chardev' for a path rnnkit may write; a UserError otherwise."""
    try:
        st = os.stat(p)
    except FileNotFoundError:
        if not p.parent.is_dir():
            raise UserError(f"{p}: cannot write: folder {p.parent} does not exist") from None
        return "new"
    except OSError as e:
        raise UserError(f"{p}: cannot write ({_why(e)})") from None
    if stat.S_ISREG(st.st_mode):
        return "file"
    if stat.S_ISCHR(st.st_mode):
        return "chardev"
    kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a fifo" if stat.S_ISFIFO(st.st_mode) else "not a regular file"
    raise UserError(f"{p}: is {kind}; an output must be a regular file (or a new path)")


def check_output(path: PathLike) -> Path:
    """Refuse an output path that cannot be written, before any work is done."""
    p = Path(path)
    _output_kind(p)
    return p


@contextmanager
def atomic_output(path: PathLike, mode: str = "w", encoding: str = "utf-8", newline: str = "") -> Iterator[IO]:
    """Open ``path`` for writing through a temp file renamed into place on success.

    A character device (``/dev/stdout``) is written directly. Errors while writing become one
    :class:`UserError` line; the target is untouched and the temp file removed."""
    p = Path(path)
    kind = _output_kind(p)
    binary = "b" in mode
    if kind == "chardev":
        try:
            with open(p, mode, **({} if binary else {"encoding": encoding, "newline": newline})) as f:
                yield f
        except OSError as e:
            raise UserError(f"{p}: write failed ({_why(e)})") from None
        return
    with _temp_beside(p, ".tmp") as tmp:
        with open(tmp, mode, **({} if binary else {"encoding": encoding, "newline": newline})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


@contextmanager
def _temp_beside(p: Path, suffix: str) -> Iterator[str]:
    """A temp file's name in ``p``'s folder, renamed onto ``p`` when the block ends cleanly;
    removed otherwise. The one place write errors become a :class:`UserError` line."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=suffix, dir=p.parent)
        os.close(fd)
    except OSError as e:
        raise UserError(f"{p}: cannot write ({_why(e)})") from None
    try:
        try:
            yield tmp
            os.chmod(tmp, 0o644 & ~_umask())
            os.replace(tmp, p)
        except OSError as e:
            msg = "no space left on the device" if e.errno == errno.ENOSPC else _why(e)
            raise UserError(f"{p}: write failed ({msg}); the file was left as it was") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def write_text(path: PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path) as f:
        f.write(text)
    return Path(path)


def write_bytes(path: PathLike, data: bytes) -> Path:
    with atomic_output(path, "wb") as f:
        f.write(data)
    return Path(path)


def write_with(path: PathLike, writer: Callable[[str], None], suffix: str = "") -> Path:
    """For libraries that want a file name (``fig.savefig``): ``writer(tmp_name)`` writes a
    temp file in the target's folder, renamed into place when it returns."""
    p = Path(path)
    if _output_kind(p) == "chardev":
        with atomic_output(p, "wb") as f:
            import io

            buf = io.BytesIO()
            writer(buf)  # type: ignore[arg-type]  # matplotlib and pandas take file objects too
            f.write(buf.getvalue())
        return p
    with _temp_beside(p, suffix or p.suffix or ".tmp") as tmp:
        writer(tmp)
    return p


def replace_dir(tmp: PathLike, target: PathLike) -> Path:
    """Put the complete directory ``tmp`` in place of ``target`` (new or existing): the old one
    is renamed aside first (``.old-NAME-PID``, which checkpoint recovery knows), so ``target``
    is never missing or half-deleted for a concurrent reader; the old copy is removed last."""
    import shutil

    tmp, target = Path(tmp), Path(target)
    if target.exists():
        old = target.with_name(f".old-{target.name}-{os.getpid()}")
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)
    return target


def savefig(fig, path: PathLike, dpi: int = 110) -> Path:
    """``fig.savefig`` through :func:`write_with` (the format from the suffix; PNG by default)."""
    p = Path(path)
    fmt = p.suffix.lstrip(".").lower() or "png"
    return write_with(p, lambda target: fig.savefig(target, dpi=dpi, bbox_inches="tight", format=fmt),
                      suffix=p.suffix or ".png")


def stdin_text() -> str:
    """All of standard input as UTF-8 text (``--input -``); other bytes are refused, not replaced."""
    raw = getattr(sys.stdin, "buffer", None)
    try:
        if raw is None:  # a text stream without bytes underneath (tests, embedding applications)
            return sys.stdin.read()
        return raw.read().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"standard input is not UTF-8 text (byte {e.start})") from None
