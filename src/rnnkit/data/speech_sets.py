"""Where ASR utterances come from, for training and for scoring: FSDD digits (single recordings
or connected-digit compositions) or a manifest of audio files, and the log-mel features the
model hears. No torch, no Lightning: the recipe and the predictor share it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from ..errors import DataError
from . import speech as sp
from .audio import FeatureConfig, LogMel, load_audio, normalise, speed_perturb

EVAL_SEED = 20240601  # validation/test composition: the same for every run and checkpoint
_FSDD_CACHE: Dict[Tuple[int, str], List[sp.Clip]] = {}


def feature_config(model: Dict[str, Any]) -> FeatureConfig:
    return FeatureConfig(model["sample_rate"], model["n_mels"], model["win_ms"], model["hop_ms"])


def make_units(model: Dict[str, Any]) -> sp.Units:
    lex = sp.read_lexicon(Path(model["lexicon"])) if model.get("lexicon") else None
    return sp.Units(model["units"], lex)


def fsdd_clips(sample_rate: int) -> List[sp.Clip]:
    """FSDD recordings at ``sample_rate``, loaded once per process."""
    root = str(sp.fsdd_root())
    key = (sample_rate, root)
    if key not in _FSDD_CACHE:
        _FSDD_CACHE[key] = sp.load_fsdd(sample_rate)
    return _FSDD_CACHE[key]


# ---------------------------------------------------------------------------------------
# sources: anything that yields (waveform, transcript) for an item


class FsddSource:
    """Items are :class:`~rnnkit.data.speech.Composite` plans over in-memory FSDD clips."""

    def __init__(self, clips: Sequence[sp.Clip]) -> None:
        self.clips = clips

    def wave(self, item: sp.Composite, speed: float = 1.0) -> np.ndarray:
        return sp.render(item, self.clips, speed)

    def text(self, item: sp.Composite) -> str:
        return item.text

    def length(self, item: sp.Composite) -> int:
        return sum(len(self.clips[c].samples) for c in item.clips) + sum(item.gaps)

    def name(self, item: sp.Composite) -> str:
        c = [self.clips[i] for i in item.clips]
        return "+".join(f"{x.digit}_{x.speaker}_{x.index}" for x in c)


class FileSource:
    """Items are :class:`~rnnkit.data.speech.Utterance`. Waveforms are kept in memory after
    their first read, up to ``cache_hours`` of audio in all; beyond that they are re-read
    from disk each time (lengths for bucketing come from the headers, not the samples)."""

    def __init__(self, sample_rate: int, max_seconds: float, cache_hours: float = 2.0) -> None:
        self.sample_rate, self.max_seconds = sample_rate, max_seconds
        self.cache_budget = int(cache_hours * 3600 * sample_rate)
        self._cache: Dict[str, np.ndarray] = {}
        self._lengths: Dict[str, int] = {}

    def wave(self, item: sp.Utterance, speed: float = 1.0) -> np.ndarray:
        x = self._cache.get(item.path)
        if x is None:
            x = load_audio(item.path, self.sample_rate, self.max_seconds)
            if len(x) <= self.cache_budget:
                self._cache[item.path] = x
                self.cache_budget -= len(x)
        return speed_perturb(x, speed) if speed != 1.0 else x

    def text(self, item: sp.Utterance) -> str:
        return item.text

    def length(self, item: sp.Utterance) -> int:
        n = self._lengths.get(item.path)
        if n is None:
            from .audio import audio_info

            info = audio_info(Path(item.path))
            n = self._lengths[item.path] = int(info.duration * self.sample_rate)
        return n

    def name(self, item: sp.Utterance) -> str:
        return item.path


def featurise(source, items: Sequence, fe: LogMel) -> List[np.ndarray]:
    return [normalise(fe(source.wave(it))) for it in items]


# ---------------------------------------------------------------------------------------
# splits


# The connected-digit validation and test utterances are defined by the benchmark, not by the
# training augmentation: digits framed by 30-200 ms of silence, 50-300 ms gaps, light noise.
# (Training compositions may start right at the speech, as the raw recordings do.)
EVAL_EDGE_MS = (30.0, 200.0)


def fsdd_sets(data: Dict[str, Any], sample_rate: int) -> Tuple[FsddSource, List[int], List[sp.Composite], List[sp.Composite]]:
    """``(source, train clip pool, validation items, test items)`` of the FSDD configuration."""
    clips = fsdd_clips(sample_rate)
    train, val, test = sp.fsdd_split(clips, data.get("test_speaker"), data["val_recordings"])
    if data["fsdd_mode"] == "single":
        val_items, test_items = sp.single_plan(clips, val), sp.single_plan(clips, test)
    else:
        def fixed(pool, salt):
            rng = np.random.default_rng([EVAL_SEED, salt])
            out = []
            for _ in range(data["eval_passes"]):
                out += sp.compose_plan(clips, pool, rng, data["min_digits"], data["max_digits"], sample_rate,
                                       edge_ms=EVAL_EDGE_MS)
            return out
        val_items, test_items = fixed(val, 1), fixed(test, 2)
    return FsddSource(clips), train, val_items, test_items


def file_sets(data: Dict[str, Any], sample_rate: int, seed: int) -> Tuple[FileSource, List[sp.Utterance], List[sp.Utterance]]:
    utts = sp.read_manifest(data["data"])
    src = FileSource(sample_rate, data["max_seconds"])
    if data.get("val_data"):
        return src, utts, sp.read_manifest(data["val_data"])
    if len(utts) < 2:
        raise DataError(f"{data['data']}: needs at least 2 utterances (one for validation), or give --val-data")
    order = np.random.default_rng([seed, 7]).permutation(len(utts))
    n_val = max(1, int(round(data["val_fraction"] * len(utts))))
    return src, [utts[i] for i in order[n_val:]], [utts[i] for i in order[:n_val]]


def check_transcripts(units: sp.Units, source, items: Sequence, what: str) -> List[List[int]]:
    """Encode every transcript, naming the file of the first one that cannot be encoded."""
    out = []
    for it in items:
        out.append(units.encode(source.text(it), f"{what}: {source.name(it)}"))
    return out


