"""Speech corpora for CTC: transcripts, output units, manifests, FSDD and connected digits.

Sources (:func:`read_manifest`):

* a CSV manifest ``path,text`` (a header row ``path,text`` is optional; paths may be
  relative to the manifest's folder);
* a LibriSpeech-style tree: ``*.trans.txt`` files of ``UTTERANCE-ID text`` lines next to
  ``UTTERANCE-ID.flac`` (or ``.wav``);
* a folder named in the Free Spoken Digit Dataset manner, ``{digit}_{speaker}_{index}.wav``
  (transcribed as the digit's English word).

FSDD (``../shared/datasets/fsdd``: 2,500 recordings, 5 speakers, 8 kHz) splits two ways:
the dataset's standard split (recordings 0-4 of each speaker and digit for test) or leave
one speaker out (:func:`fsdd_split`). *Connected-digit* utterances are composed from its
clips (:func:`compose_connected`): 1-7 digits of one speaker joined by random gaps, with light
noise, transcribed as words ("three one four"), so a model must segment and transcribe.

Output units (:class:`Units`): characters (blank, space, a-z, apostrophe) or ARPAbet phonemes
through a pronunciation lexicon (a built-in one for the digit words, or a CMUdict-format
file), with ``|`` as the word boundary. Index 0 is always the CTC blank.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import DataError
from .audio import AUDIO_SUFFIXES

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo")
FSDD_PATTERN = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")
BLANK = "<b>"

# ARPAbet pronunciations (CMUdict, stress removed) of the digit words
DIGIT_LEXICON: Dict[str, Tuple[str, ...]] = {
    "zero": ("Z", "IH", "R", "OW"), "one": ("W", "AH", "N"), "two": ("T", "UW"),
    "three": ("TH", "R", "IY"), "four": ("F", "AO", "R"), "five": ("F", "AY", "V"),
    "six": ("S", "IH", "K", "S"), "seven": ("S", "EH", "V", "AH", "N"), "eight": ("EY", "T"),
    "nine": ("N", "AY", "N"), "oh": ("OW",),
}
ARPABET = ("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH "
           "UH UW V W Y Z ZH").split()


_PUNCT = re.compile(r"[^\w\s']|_")


def normalise_text(text: str) -> str:
    """Lower case, curly apostrophes straightened, punctuation other than the apostrophe
    dropped (``"Three!"`` -> ``three``, ``twenty-one`` -> ``twenty one``), whitespace
    collapsed. Letters and digits stay, so what the units cannot spell is still refused."""
    return " ".join(_PUNCT.sub(" ", text.replace("\u2019", "'").lower()).split())


# ---------------------------------------------------------------------------------------
# output units


def read_lexicon(path: Path) -> Dict[str, Tuple[str, ...]]:
    """A CMUdict-format lexicon: ``WORD  PH1 PH2 ...`` per line (stress digits dropped;
    ``;;;`` comments and alternative pronunciations ``WORD(2)`` ignored)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as e:
        raise DataError(f"{path}: cannot read lexicon ({e.strerror or e})") from None
    lex: Dict[str, Tuple[str, ...]] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.startswith(";;;"):
            continue
        parts = line.split()
        if len(parts) < 2:
            raise DataError(f"{path}:{n}: expected 'WORD PHONEME ...'")
        word = parts[0].lower()
        if word.endswith(")") and "(" in word:
            continue
        phones = tuple(re.sub(r"\d", "", p).upper() for p in parts[1:])
        bad = [p for p in phones if p not in ARPABET]
        if bad:
            raise DataError(f"{path}:{n}: unknown ARPAbet phoneme {bad[0]!r}")
        lex.setdefault(word, phones)
    if not lex:
        raise DataError(f"{path}: lexicon has no entries")
    return lex


class Units:
    """CTC output units: ``tokens[0]`` is the blank; ``encode`` / ``decode`` map text <-> ids.

    ``kind == "chars"``: tokens are characters, the space separates words.
    ``kind == "phonemes"``: tokens are ARPAbet phonemes and ``|`` between words; text is
    turned into phonemes word by word through ``lexicon``, and decoded phoneme words are
    mapped back to the lexicon word with the nearest pronunciation.
    """

    CHARS = tuple(" abcdefghijklmnopqrstuvwxyz'")

    def __init__(self, kind: str = "chars", lexicon: Optional[Dict[str, Sequence[str]]] = None) -> None:
        if kind not in ("chars", "phonemes"):
            raise ValueError(f"units must be chars or phonemes, got {kind!r}")
        self.kind = kind
        self.lexicon = {w: tuple(p) for w, p in (lexicon or {}).items()}
        if kind == "chars":
            self.tokens = (BLANK,) + self.CHARS
        else:
            if not self.lexicon:
                self.lexicon = dict(DIGIT_LEXICON)
            self.tokens = (BLANK, "|") + tuple(ARPABET)
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.space = self.index[" " if kind == "chars" else "|"]

    def __len__(self) -> int:
        return len(self.tokens)

    def to_json(self) -> dict:
        out = {"kind": self.kind, "tokens": list(self.tokens)}
        if self.kind == "phonemes":
            out["lexicon"] = {w: " ".join(p) for w, p in sorted(self.lexicon.items())}
        return out

    @classmethod
    def from_json(cls, d: dict) -> "Units":
        lex = {w: tuple(p.split()) for w, p in d.get("lexicon", {}).items()} or None
        u = cls(d["kind"], lex)
        if list(u.tokens) != list(d["tokens"]):
            raise DataError("checkpoint units do not match this rnnkit version's unit inventory")
        return u

    def check(self, text: str, where: str) -> None:
        """Raise a DataError naming ``where`` if ``text`` cannot be encoded."""
        self.encode(text, where)

    def encode(self, text: str, where: str = "transcript") -> List[int]:
        text = normalise_text(text)
        if not text:
            raise DataError(f"{where}: empty transcript")
        if self.kind == "chars":
            bad = sorted({c for c in text if c not in self.index})
            if bad:
                raise DataError(f"{where}: transcript {text[:40]!r} has characters outside the model's alphabet: "
                                f"{''.join(bad)!r} (alphabet: letters a-z, apostrophe, space)")
            return [self.index[c] for c in text]
        ids: List[int] = []
        for i, word in enumerate(text.split()):
            if word not in self.lexicon:
                raise DataError(f"{where}: word {word!r} is not in the pronunciation lexicon "
                                f"({len(self.lexicon)} words; give --lexicon FILE)")
            if i:
                ids.append(self.space)
            ids.extend(self.index[p] for p in self.lexicon[word])
        return ids

    def reference(self, text: str) -> str:
        """The unit string a CER/PER is computed on (characters, or space-joined phonemes)."""
        text = normalise_text(text)
        if self.kind == "chars":
            return text
        return " ".join(self.tokens[i] for i in self.encode(text))

    def unit_string(self, ids: Sequence[int]) -> str:
        """Decoded ids as a unit string comparable with :meth:`reference`."""
        if self.kind == "chars":
            return " ".join("".join(self.tokens[i] for i in ids if i).split())
        return " ".join(self.tokens[i] for i in ids if i)

    def words(self, ids: Sequence[int]) -> str:
        """Decoded ids as words (phonemes: each word mapped to the nearest lexicon entry)."""
        if self.kind == "chars":
            return self.unit_string(ids)
        groups, cur = [], []
        for i in ids:
            if i == self.space:
                if cur:
                    groups.append(tuple(cur))
                cur = []
            elif i:
                cur.append(self.tokens[i])
        if cur:
            groups.append(tuple(cur))
        return " ".join(self._nearest_word(g) for g in groups)

    def _nearest_word(self, phones: Tuple[str, ...]) -> str:
        if not hasattr(self, "_inverse"):
            self._inverse: Dict[Tuple[str, ...], str] = {}
            for w, p in sorted(self.lexicon.items()):
                self._inverse.setdefault(p, w)
        if phones in self._inverse:
            return self._inverse[phones]
        best = min(self._inverse.items(), key=lambda kv: (_edit_distance(kv[0], phones), kv[1]))
        return best[1]


def _edit_distance(a: Sequence, b: Sequence) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


# ---------------------------------------------------------------------------------------
# manifests


@dataclass
class Utterance:
    """One training/evaluation example: an audio file and its transcript."""

    path: str
    text: str
    speaker: str = ""
    uid: str = ""


def _resolve(base: Path, name: str, where: str) -> Path:
    p = Path(name).expanduser()
    if not p.is_absolute():
        p = base / p
    if not p.is_file():
        raise DataError(f"{where}: audio file {name!r} does not exist" + ("" if Path(name).is_absolute()
                                                                            else f" (looked in {base})"))
    return p


def read_csv_manifest(path: Path) -> List[Utterance]:
    """``path,text`` rows; a ``path,text`` header row is skipped; relative paths are resolved
    against the manifest's folder."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError:
        raise DataError(f"{path}: manifest is not UTF-8 text") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read manifest ({e.strerror or e})") from None
    except csv.Error as e:
        raise DataError(f"{path}: malformed CSV ({e})") from None
    out = []
    for n, row in enumerate(rows, 1):
        if not row or not "".join(row).strip():
            continue
        if n == 1 and [c.strip().lower() for c in row[:2]] == ["path", "text"]:
            continue
        if n == 1 and not Path(row[0].strip()).suffix.lower() in AUDIO_SUFFIXES:
            raise DataError(f"{path}:1: the header must be 'path,text' (found columns: "
                            f"{', '.join(c.strip() for c in row)[:200]}); or start with an audio path and its transcript")
        if len(row) < 2:
            raise DataError(f"{path}:{n}: expected 'path,text'")
        audio = _resolve(path.parent, row[0].strip(), f"{path}:{n}")
        text = ",".join(row[1:])
        out.append(Utterance(str(audio), text, uid=f"{path.name}:{n}"))
    if not out:
        raise DataError(f"{path}: manifest lists no utterances")
    return out


def read_librispeech(root: Path) -> List[Utterance]:
    """Every ``*.trans.txt`` under ``root``; audio ``ID.flac`` or ``ID.wav`` beside it."""
    out = []
    for trans in sorted(Path(root).rglob("*.trans.txt")):
        try:
            lines = trans.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise DataError(f"{trans}: cannot read transcripts ({e.__class__.__name__})") from None
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            parts = line.split(maxsplit=1)
            if len(parts) < 2:
                raise DataError(f"{trans}:{n}: expected 'UTTERANCE-ID text'")
            uid, text = parts
            audio = next((trans.parent / f"{uid}{s}" for s in (".flac", ".wav") if (trans.parent / f"{uid}{s}").is_file()),
                         None)
            if audio is None:
                raise DataError(f"{trans}:{n}: audio file {uid}.flac (or .wav) does not exist in {trans.parent}")
            out.append(Utterance(str(audio), text, speaker=uid.split("-")[0], uid=uid))
    return out


def read_fsdd_folder(root: Path) -> List[Utterance]:
    """Files named ``{digit}_{speaker}_{index}.wav`` -> transcript = the digit's word."""
    out = []
    for p in sorted(Path(root).rglob("*.wav")):
        m = FSDD_PATTERN.match(p.name)
        if m:
            out.append(Utterance(str(p), DIGIT_WORDS[int(m.group(1))], speaker=m.group(2), uid=p.stem))
    return out


def read_manifest(source) -> List[Utterance]:
    """Utterances of a CSV manifest, a LibriSpeech-style tree or an FSDD-named folder."""
    p = Path(source).expanduser()
    if not p.exists():
        raise DataError(f"{p}: no such manifest, folder or dataset (named datasets: fsdd)")
    if p.is_file():
        if p.suffix.lower() in (".csv", ".tsv", ".txt") and not p.name.endswith(".trans.txt"):
            return read_csv_manifest(p)
        if p.name.endswith(".trans.txt"):
            return read_librispeech(p.parent)
        raise DataError(f"{p}: expected a CSV manifest (path,text), a *.trans.txt file or a folder")
    for name in ("manifest.csv", "metadata.csv", "transcripts.csv"):
        if (p / name).is_file():
            return read_csv_manifest(p / name)
    utts = read_librispeech(p)
    if not utts:
        utts = read_fsdd_folder(p)
    if not utts:
        csvs = sorted(p.glob("*.csv"))
        if len(csvs) == 1:
            return read_csv_manifest(csvs[0])
        raise DataError(f"{p}: found no transcripts (manifest.csv with path,text; *.trans.txt; "
                        "or files named {digit}_{speaker}_{index}.wav)")
    return utts


# ---------------------------------------------------------------------------------------
# FSDD


@dataclass
class Clip:
    """One FSDD recording held in memory."""

    digit: int
    speaker: str
    index: int
    samples: np.ndarray = field(repr=False)


def fsdd_root(root: Optional[Path] = None) -> Path:
    from .datasets import find_dataset_dir

    d = find_dataset_dir("fsdd", root)
    if d is None or not (d / "recordings").is_dir():
        raise DataError("fsdd: dataset not found (looked in $RNNKIT_DATA_DIR and ../shared/datasets/fsdd); "
                        "download recordings/ from https://github.com/Jakobovski/free-spoken-digit-dataset")
    return d / "recordings"


def load_fsdd(sample_rate: int = 8000, root: Optional[Path] = None) -> List[Clip]:
    """All FSDD recordings as mono float32 at ``sample_rate`` (about 9 M samples at 8 kHz)."""
    from .audio import load_audio

    clips = []
    folder = fsdd_root(root)
    for p in sorted(folder.glob("*.wav")):
        m = FSDD_PATTERN.match(p.name)
        if m:
            clips.append(Clip(int(m.group(1)), m.group(2), int(m.group(3)), load_audio(p, sample_rate)))
    if not clips:
        raise DataError(f"{folder}: no FSDD recordings ({{digit}}_{{speaker}}_{{index}}.wav)")
    return clips


def fsdd_split(clips: Sequence[Clip], test_speaker: Optional[str] = None,
               val_recordings: int = 5) -> Tuple[List[int], List[int], List[int]]:
    """Indices ``(train, val, test)`` into ``clips``.

    Standard split (``test_speaker=None``): recordings 0-4 of every speaker and digit are the
    test set, the next ``val_recordings`` (5-9) validation, the rest training.
    Leave-one-speaker-out: every recording of ``test_speaker`` is the test set; of the other
    speakers, recordings 0..val_recordings-1 are validation and the rest training.
    """
    speakers = sorted({c.speaker for c in clips})
    if test_speaker is not None and test_speaker not in speakers:
        raise DataError(f"--test-speaker {test_speaker!r} is not an FSDD speaker (speakers: {', '.join(speakers)})")
    train, val, test = [], [], []
    for i, c in enumerate(clips):
        if test_speaker is None:
            (test if c.index < 5 else val if c.index < 5 + val_recordings else train).append(i)
        elif c.speaker == test_speaker:
            test.append(i)
        else:
            (val if c.index < val_recordings else train).append(i)
    return train, val, test


@dataclass
class Composite:
    """A connected-digit utterance: clip indices, silences between them, noise level and seed."""

    clips: Tuple[int, ...]
    gaps: Tuple[int, ...]  # len(clips) + 1 silences in samples (leading, between, trailing)
    snr_db: float
    seed: int
    text: str = ""


def compose_plan(clips: Sequence[Clip], pool: Sequence[int], rng: np.random.Generator,
                 min_digits: int = 1, max_digits: int = 7, sample_rate: int = 8000,
                 gap_ms: Tuple[float, float] = (50.0, 300.0), edge_ms: Tuple[float, float] = (0.0, 200.0),
                 snr_db: Tuple[float, float] = (25.0, 40.0)) -> List[Composite]:
    """Cut each speaker's clips in ``pool`` (shuffled) into groups of ``min_digits``..``max_digits``:
    every clip of the pool is used exactly once. Gaps, edges and noise levels are random.

    Edges start at 0 ms: FSDD's recordings are trimmed close to the speech, and a model that
    only ever saw >= 30 ms of silence before the first digit read 81% of the raw single test
    recordings (it dropped first letters: "ight" for "eight")."""
    by_speaker: Dict[str, List[int]] = {}
    for i in pool:
        by_speaker.setdefault(clips[i].speaker, []).append(i)
    plan = []
    for spk in sorted(by_speaker):
        ids = [by_speaker[spk][j] for j in rng.permutation(len(by_speaker[spk]))]
        k = 0
        while k < len(ids):
            n = int(rng.integers(min_digits, max_digits + 1))
            group = tuple(ids[k:k + n])
            k += n
            inner = rng.uniform(*gap_ms, size=len(group) - 1)
            edges = rng.uniform(*edge_ms, size=2)
            gaps = tuple(int(g * sample_rate / 1000) for g in (edges[0], *inner, edges[1]))
            plan.append(Composite(group, gaps, float(rng.uniform(*snr_db)), int(rng.integers(2 ** 31)),
                                  " ".join(DIGIT_WORDS[clips[c].digit] for c in group)))
    return [plan[i] for i in rng.permutation(len(plan))]


def render(comp: Composite, clips: Sequence[Clip], speed: float = 1.0) -> np.ndarray:
    """The waveform of a connected-digit utterance: clips joined by silences, plus light noise."""
    from .audio import add_noise, speed_perturb

    parts = []
    for k, c in enumerate(comp.clips):
        parts.append(np.zeros(comp.gaps[k], np.float32))
        x = clips[c].samples
        peak = float(np.abs(x).max()) or 1.0
        parts.append((0.5 * x / peak).astype(np.float32))  # level the digits of one utterance
    parts.append(np.zeros(comp.gaps[-1], np.float32))
    wav = np.concatenate(parts)
    if speed != 1.0:
        wav = speed_perturb(wav, speed)
    if not np.isfinite(comp.snr_db):
        return wav
    return add_noise(wav, comp.snr_db, np.random.default_rng(comp.seed))


def single_plan(clips: Sequence[Clip], pool: Sequence[int]) -> List[Composite]:
    """One utterance per clip, as recorded (no gaps, no noise)."""
    return [Composite((i,), (0, 0), float("inf"), 0, DIGIT_WORDS[clips[i].digit]) for i in pool]


def audio_suffix_ok(path: Path) -> bool:
    return Path(path).suffix.lower() in AUDIO_SUFFIXES
