"""Plain-text corpora for character-level models: validation, vocabulary, memory-mapped ids.

A corpus (one file, or a folder of ``*.txt`` files joined in sorted order) is read in blocks
with a strict incremental UTF-8 decoder, so a file larger than RAM is never loaded whole:

1. a first pass checks the bytes (UTF-8, no NUL bytes) and collects the character set;
2. a second pass writes the character ids into a ``np.memmap`` file in the user cache,
   keyed by the files' paths, sizes and modification times, and reused on later runs.

The split is contiguous: the last ``val_fraction`` of the ids is validation (nanoGPT's
convention, so losses compare with published figures).
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import DataError

BLOCK = 1 << 22  # 4 MiB of bytes per read
TEXT_SUFFIXES = (".txt", ".text", ".md", ".rst", "")


class CharVocab:
    """Characters <-> ids. Ids follow the sorted order of the characters."""

    def __init__(self, chars: Sequence[str]) -> None:
        chars = list(chars)
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise ValueError("vocabulary must be distinct single characters")
        if not chars:
            raise ValueError("empty vocabulary")
        self.chars: List[str] = chars
        self.index: Dict[str, int] = {c: i for i, c in enumerate(chars)}

    def __len__(self) -> int:
        return len(self.chars)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8 if len(self) <= 256 else np.uint16 if len(self) <= 65536 else np.uint32)

    def encode(self, text: str) -> np.ndarray:
        missing = sorted({c for c in text if c not in self.index})
        if missing:
            raise KeyError("".join(missing))
        return np.fromiter((self.index[c] for c in text), dtype=np.int64, count=len(text))

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def unknown(self, text: str) -> List[str]:
        return sorted({c for c in text if c not in self.index})

    def to_json(self) -> List[str]:
        return list(self.chars)

    @classmethod
    def from_json(cls, chars: Sequence[str]) -> "CharVocab":
        return cls(chars)


def corpus_files(path: Path) -> List[Path]:
    """The files of a corpus path: the file itself, or a folder's text files (sorted)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
                       and p.suffix.lower() in TEXT_SUFFIXES)
        if not files:
            raise DataError(f"{path}: folder holds no text files (*.txt)")
        return files
    raise DataError(f"{path}: not a regular file or directory")


def iter_text(files: Sequence[Path], block: int = BLOCK) -> Iterator[Tuple[Path, str]]:
    """Yield (file, decoded text block); files are separated by a newline if needed."""
    for i, path in enumerate(files):
        decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
        offset = 0
        last = ""
        try:
            with open(path, "rb") as f:
                while True:
                    raw = f.read(block)
                    final = not raw
                    if b"\x00" in raw:
                        pos = offset + raw.index(b"\x00")
                        raise DataError(f"{path}: binary file (NUL byte at offset {pos}), not text")
                    try:
                        text = decoder.decode(raw, final=final)
                    except UnicodeDecodeError as e:
                        raise DataError(
                            f"{path}: not UTF-8 text (invalid byte at offset {offset + e.start})"
                        ) from None
                    if offset == 0 and text.startswith("\ufeff"):
                        text = text[1:]  # a UTF-8 byte-order mark is not part of the text
                    offset += len(raw)
                    if text:
                        last = text[-1]
                        yield path, text
                    if final:
                        break
        except PermissionError:
            raise DataError(f"{path}: permission denied") from None
        except IsADirectoryError:
            raise DataError(f"{path}: is a directory") from None
        if i < len(files) - 1 and last and last != "\n":
            yield path, "\n"


def _cache_root() -> Path:
    root = os.environ.get("RNNKIT_CACHE_DIR")
    if root:
        return Path(root)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("rnnkit"))


def _fingerprint(files: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for p in files:
        st = p.stat()
        h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


@dataclass
class EncodedCorpus:
    """A corpus encoded as character ids in a read-only memory map."""

    name: str
    ids: np.ndarray  # (N,) memmap of uint8/uint16/uint32
    vocab: CharVocab

    def __len__(self) -> int:
        return len(self.ids)

    def split(self, val_fraction: float) -> Tuple[np.ndarray, np.ndarray]:
        """Contiguous split: the last ``val_fraction`` is validation."""
        n_val = int(round(len(self.ids) * val_fraction))
        return self.ids[: len(self.ids) - n_val], self.ids[len(self.ids) - n_val:]


def encode_corpus(path: Path, name: Optional[str] = None, vocab: Optional[CharVocab] = None,
                  cache_dir: Optional[Path] = None) -> EncodedCorpus:
    """Encode a text file or folder into a cached memmap of ids (two streaming passes).

    With ``vocab`` given (e.g. a trained model's), characters outside it raise
    :class:`DataError`; use :func:`count_unknown` to score such text instead.
    """
    files = corpus_files(path)
    cache = Path(cache_dir) if cache_dir else _cache_root() / "corpora"
    key = _fingerprint(files)
    meta_path = cache / f"{key}.json"
    bin_path = cache / f"{key}.ids"
    if meta_path.exists() and bin_path.exists():
        try:
            meta = json.loads(meta_path.read_text("utf-8"))
            cached_vocab = CharVocab.from_json(meta["vocab"])
            if vocab is None or set(cached_vocab.chars) <= set(vocab.chars):
                ids = np.memmap(bin_path, dtype=np.dtype(meta["dtype"]), mode="r", shape=(meta["length"],))
                if vocab is not None and vocab.chars != cached_vocab.chars:
                    remap = np.array([vocab.index[c] for c in cached_vocab.chars], dtype=vocab.dtype)
                    ids = remap[ids]
                    cached_vocab = vocab
                return EncodedCorpus(name or str(path), ids, cached_vocab)
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            pass  # stale or damaged cache entry: rebuild it below

    chars: set = set()
    total = 0
    for _, text in iter_text(files):
        chars.update(text)
        total += len(text)
    if total == 0:
        raise DataError(f"{path}: empty corpus (no text)")
    if vocab is None:
        vocab = CharVocab(sorted(chars))
    else:
        unknown = sorted(chars - set(vocab.chars))
        if unknown:
            raise DataError(f"{path}: characters outside the model's vocabulary: {''.join(unknown)!r}")

    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".ids.tmp", dir=cache)
    os.close(fd)
    try:
        out = np.memmap(tmp, dtype=vocab.dtype, mode="w+", shape=(total,))
        lut = vocab.index
        table = _lookup_table(vocab)  # code point -> id: far faster than a dict per character
        pos = 0
        for _, text in iter_text(files):
            n = len(text)
            codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
            if table is not None and codes.max() < len(table):
                out[pos:pos + n] = table[codes]
            else:
                out[pos:pos + n] = np.fromiter((lut[c] for c in text), dtype=vocab.dtype, count=n)
            pos += n
        out.flush()
        del out
        os.replace(tmp, bin_path)
        fd, tmp_meta = tempfile.mkstemp(prefix=f".{key}.", suffix=".json.tmp", dir=cache)  # unique per process
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps({"vocab": vocab.to_json(), "dtype": vocab.dtype.name,
                                "length": total, "files": [str(f) for f in files]}))
        os.replace(tmp_meta, meta_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    ids = np.memmap(bin_path, dtype=vocab.dtype, mode="r", shape=(total,))
    return EncodedCorpus(name or str(path), ids, vocab)


def _lookup_table(vocab: CharVocab) -> Optional[np.ndarray]:
    top = max(ord(c) for c in vocab.chars)
    if top >= 1 << 17:
        return None
    table = np.zeros(top + 1, dtype=vocab.dtype)
    for c, i in vocab.index.items():
        table[ord(c)] = i
    return table


def count_unknown(path: Path, vocab: CharVocab) -> Tuple[np.ndarray, Dict[str, int]]:
    """Encode text for scoring: known characters as ids, unknown ones dropped and counted.

    Returns ``(ids, unknown_counts)``; ``ids`` holds only in-vocabulary characters (the
    scoring of a text with unknown characters says how many were skipped).
    """
    unknown: Dict[str, int] = {}
    parts: List[np.ndarray] = []
    for _, text in iter_text(corpus_files(path)):
        for c in set(text) - set(vocab.chars):
            unknown[c] = unknown.get(c, 0) + text.count(c)
        known = [vocab.index[c] for c in text if c in vocab.index]
        parts.append(np.asarray(known, dtype=np.int64))
    ids = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if len(ids) == 0 and not unknown:
        raise DataError(f"{path}: empty corpus (no text)")
    return ids, unknown
