"""Parallel text for translation: aligned sentence pairs, Multi30k, subword vocabularies.

Sources of sentence pairs (:func:`load_pairs`):

* two aligned files ``SRC_FILE:TGT_FILE`` (one sentence per line, plain or gzipped, UTF-8);
* a TSV file of ``source<TAB>target`` lines (exactly one TAB per line);
* ``multi30k`` (English -> German; Elliott et al. 2016): ``train``, ``val`` (1,014 pairs) and
  ``test`` (test2016, 1,000 pairs), read gzipped from ``../shared/datasets/multi30k`` or
  downloaded from the official repository with sha256 checks. Licence: non-commercial
  research and teaching only (derived from Flickr30K).

Each line is stripped (the raw Multi30k files carry trailing spaces and one TAB *inside* a
German sentence, so aligned files are never split on TAB). Lines empty on both sides are
skipped; a line empty on one side only, or files of different lengths, is an error naming
the file and line.

Tokenisation is subword (:class:`SubwordVocab`): a SentencePiece model (BPE or unigram,
Kudo & Richardson 2018) trained on the training pairs only, kept as its own serialized
protobuf (base64 inside the checkpoint's ``config.json``; never a pickle). Ids: 0 = pad,
1 = unk, 2 = bos, 3 = eos.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import DataError
from .datasets import RemoteFile, cache_root, download, find_dataset_dir, sha256_of

PAD, UNK, BOS, EOS = 0, 1, 2, 3

_M30K_URL = "https://raw.githubusercontent.com/multi30k/dataset/a3d2e0d26b56f3846f66a952536ffed4e401d05a/data/task1/raw/"
MULTI30K_FILES: Dict[str, str] = {
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "test_2016_flickr.en.gz": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
    "test_2016_flickr.de.gz": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
}
MULTI30K_SPLITS = {"train": "train", "val": "val", "test": "test_2016_flickr"}
MULTI30K_LICENCE = ("Multi30k is for non-commercial research and educational use only "
                    "(derived from Flickr30K); cite Elliott et al. 2016")


@dataclass
class Pairs:
    """Aligned sentence pairs and where they came from."""

    src: List[str]
    tgt: List[str]
    origin: str

    def __len__(self) -> int:
        return len(self.src)

    def take(self, idx: Sequence[int], origin: Optional[str] = None) -> "Pairs":
        return Pairs([self.src[i] for i in idx], [self.tgt[i] for i in idx], origin or self.origin)


# ---------------------------------------------------------------------------------------
# reading


def _open_text(path: Path):
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt", encoding="utf-8", newline="\n") if gz else open(path, "r", encoding="utf-8", newline="\n")


def read_lines(path: Path) -> List[str]:
    """All lines of a (possibly gzipped) UTF-8 file, each stripped; never split on TAB."""
    try:
        with _open_text(path) as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.strip() for line in lines]


def _unescape(s: str) -> str:
    # the raw Multi30k files carry a few HTML entities (&amp;); decode them
    return html.unescape(s) if "&" in s else s


def pair_lines(src_lines: List[str], tgt_lines: List[str], src_name: str, tgt_name: str,
               unescape: bool = False) -> Pairs:
    """Validate aligned lines: same count, no line empty on one side only."""
    n = min(len(src_lines), len(tgt_lines))
    if len(src_lines) != len(tgt_lines):
        longer, name = (src_name, tgt_name) if len(src_lines) > len(tgt_lines) else (tgt_name, src_name)
        raise DataError(f"{longer}: line {n + 1} has no partner: {name} ends after {n} lines "
                        f"({len(src_lines)} vs {len(tgt_lines)} lines)")
    src, tgt = [], []
    for i, (s, t) in enumerate(zip(src_lines, tgt_lines)):
        if not s and not t:
            continue
        if not s or not t:
            empty = src_name if not s else tgt_name
            raise DataError(f"{empty}: line {i + 1} is empty but its partner is not")
        if unescape:
            s, t = _unescape(s), _unescape(t)
        src.append(s)
        tgt.append(t)
    if not src:
        raise DataError(f"{src_name}: no sentence pairs")
    return Pairs(src, tgt, f"{src_name}:{tgt_name}")


def read_parallel(src_path: Path, tgt_path: Path) -> Pairs:
    """Two aligned files, one sentence per line (gzipped or not)."""
    return pair_lines(read_lines(src_path), read_lines(tgt_path), str(src_path), str(tgt_path))


def read_tsv(path: Path) -> Pairs:
    """``source<TAB>target`` per line; exactly one TAB per non-empty line."""
    src, tgt = [], []
    for i, raw in enumerate(read_lines(path)):
        if not raw:
            continue
        parts = raw.split("\t")
        if len(parts) != 2:
            raise DataError(f"{path}: line {i + 1} has {len(parts) - 1} TABs; expected source<TAB>target")
        s, t = parts[0].strip(), parts[1].strip()
        if not s or not t:
            raise DataError(f"{path}: line {i + 1} has an empty {'source' if not s else 'target'}")
        src.append(s)
        tgt.append(t)
    if not src:
        raise DataError(f"{path}: no sentence pairs")
    return Pairs(src, tgt, str(path))


def multi30k_dir(root: Optional[Path] = None, download_missing: bool = True) -> Path:
    """The folder holding the six Multi30k files (shared datasets, or the cache + download)."""
    folder = find_dataset_dir("multi30k", root)
    if folder is not None and all((folder / n).is_file() for n in MULTI30K_FILES):
        return folder
    dest = cache_root() / "datasets" / "multi30k"
    for name, digest in MULTI30K_FILES.items():
        path = dest / name
        if path.is_file() and sha256_of(path) == digest:
            continue
        if not download_missing:
            raise DataError(f"multi30k: {name} not found (set RNNKIT_DATA_DIR or put it under {dest})")
        download(RemoteFile(name, _M30K_URL + name, digest), path)
    return dest


def multi30k(split: str, root: Optional[Path] = None) -> Pairs:
    """English -> German pairs of one Multi30k split: ``train``, ``val`` or ``test`` (2016)."""
    if split not in MULTI30K_SPLITS:
        raise DataError(f"multi30k: unknown split {split!r} (train, val, test)")
    folder = multi30k_dir(root)
    stem = MULTI30K_SPLITS[split]
    en, de = folder / f"{stem}.en.gz", folder / f"{stem}.de.gz"
    pairs = pair_lines(read_lines(en), read_lines(de), str(en), str(de), unescape=True)
    pairs.origin = f"multi30k:{split}"
    return pairs


def load_pairs(spec: str, split: str = "train") -> Pairs:
    """``multi30k`` (``split`` chooses the part; ``multi30k:val`` overrides it),
    ``SRC_FILE:TGT_FILE``, or a ``.tsv`` file."""
    if spec == "multi30k" or spec.startswith("multi30k:"):
        return multi30k(spec.split(":", 1)[1] if ":" in spec else split)
    path = Path(spec).expanduser()
    if path.is_file():
        if path.suffix.lower() in (".tsv", ".tab") or path.name.lower().endswith((".tsv.gz",)):
            return read_tsv(path)
        raise DataError(f"{spec}: give two aligned files as SRC_FILE:TGT_FILE, or a .tsv of source<TAB>target")
    if ":" in spec:
        a, b = spec.split(":", 1)
        if not a or not b:
            raise DataError(f"{spec}: expected SRC_FILE:TGT_FILE")
        return read_parallel(Path(a).expanduser(), Path(b).expanduser())
    raise DataError(f"{spec}: no such file (use multi30k, SRC_FILE:TGT_FILE or FILE.tsv)")


# ---------------------------------------------------------------------------------------
# subword vocabulary


class SubwordVocab:
    """A SentencePiece model (serialized protobuf bytes) with rnnkit's special ids."""

    def __init__(self, model_proto: bytes) -> None:
        import sentencepiece as spm

        self.proto = bytes(model_proto)
        self.sp = spm.SentencePieceProcessor(model_proto=self.proto)
        if (self.sp.pad_id(), self.sp.unk_id(), self.sp.bos_id(), self.sp.eos_id()) != (PAD, UNK, BOS, EOS):
            raise DataError("sentencepiece model must use pad=0, unk=1, bos=2, eos=3")

    def __len__(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, texts: Sequence[str]) -> List[List[int]]:
        return self.sp.encode(list(texts), out_type=int)

    def decode(self, ids: Sequence[Sequence[int]]) -> List[str]:
        return [self.sp.decode([int(i) for i in seq if int(i) > EOS]) for seq in ids]

    def pieces(self, ids: Sequence[int]) -> List[str]:
        return [self.sp.id_to_piece(int(i)) for i in ids]

    def to_json(self) -> str:
        return base64.b64encode(self.proto).decode("ascii")

    @classmethod
    def from_json(cls, s: str) -> "SubwordVocab":
        return cls(base64.b64decode(s.encode("ascii")))

    @classmethod
    def train(cls, texts: Sequence[str], vocab_size: int, model_type: str = "bpe",
              character_coverage: float = 1.0, cache: bool = True) -> "SubwordVocab":
        """Train on ``texts`` (deterministic, one thread); cached in the user cache by content."""
        import sentencepiece as spm

        key = hashlib.sha256()
        key.update(f"{vocab_size}|{model_type}|{character_coverage}|{spm.__version__}\n".encode())
        for t in texts:
            key.update(t.encode("utf-8") + b"\n")
        path = cache_root() / "spm" / f"{key.hexdigest()[:24]}.model"
        if cache and path.is_file():
            return cls(path.read_bytes())
        buf = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(texts), model_writer=buf, vocab_size=vocab_size,
                model_type=model_type, character_coverage=character_coverage,
                pad_id=PAD, unk_id=UNK, bos_id=BOS, eos_id=EOS, num_threads=1,
                input_sentence_size=0, shuffle_input_sentence=False, minloglevel=2,
                hard_vocab_limit=False,
            )
        except RuntimeError as e:
            raise DataError(f"sentencepiece training failed: {str(e).splitlines()[0]}") from None
        vocab = cls(buf.getvalue())
        if cache:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".spm.", dir=path.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(vocab.proto)
            os.replace(tmp, path)
        return vocab


def build_vocabs(pairs: Pairs, vocab_size: int, shared: bool = True,
                 model_type: str = "bpe") -> Tuple[SubwordVocab, SubwordVocab]:
    """Source and target vocabularies trained on training pairs (one joint model if shared)."""
    if shared:
        v = SubwordVocab.train(list(pairs.src) + list(pairs.tgt), vocab_size, model_type)
        return v, v
    return (SubwordVocab.train(pairs.src, vocab_size, model_type),
            SubwordVocab.train(pairs.tgt, vocab_size, model_type))
