"""The speech-recognition predictor: audio in, words with times out (``rnnkit transcribe``/``evaluate``).

Audio (a file, or samples with their rate) is resampled to the model's rate, cut into chunks
of at most ``chunk_seconds`` at quiet points, turned into normalised log-mel features (NumPy),
and all chunks of all inputs go through the network (:class:`~.nets.AsrNet`) as one batched
call; CTC decoding (greedy, prefix beam, optionally restricted to known words) and the
alignment that times each word run in NumPy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import ConfigError, InputError, UserError
from .base import Predictor, check_float, check_int

MAX_BEAM = 256  # prefix beams; wider costs minutes per utterance and does not help CTC
Audio = Union[str, Path, Tuple[np.ndarray, int]]


class AsrPredictor(Predictor):
    """A CTC speech recogniser.

    >>> m = rnnkit.load("runs/asr")                                         # doctest: +SKIP
    >>> m.transcribe("recording.wav", beam=8)                                # doctest: +SKIP
    {'text': 'seven three', 'words': [{'word': 'seven', 'start': 0.12, 'end': 0.52, 'confidence': 0.97}, ...]}
    """

    task = "asr"
    headline = "wer"

    def __init__(self, config: Dict[str, Any], net: Any, path=None) -> None:
        super().__init__(config, net, path)
        from ..data import speech as sp
        from ..data.audio import LogMel
        from ..data.speech_sets import feature_config

        self.model_cfg, self.data_cfg = config["model"], config["data"]
        self.units = sp.Units.from_json(self.data_cfg["units"])
        self.fe = LogMel(feature_config(self.model_cfg))
        self.sample_rate = int(self.fe.cfg.sample_rate)
        self.frame_seconds = self.fe.cfg.hop_ms / 1000 * self.model_cfg["subsample"]
        self._constraints: Dict[Any, Any] = {}

    # -- decoding settings -----------------------------------------------------------------
    def word_list(self, words: Union[str, Sequence[str]]) -> List[str]:
        """``"train"`` (the training transcripts' words), a word-list file, or a list of words."""
        from ..data.speech import normalise_text

        if isinstance(words, str) and words == "train":
            known = self.data_cfg.get("words") or []
            if not known:
                raise ConfigError("--words train: this checkpoint did not record its training words; give a file")
            return list(known)
        if isinstance(words, (str, Path)):
            from ..fileio import read_text_capped

            text = read_text_capped(words, "word list")
            found = sorted({normalise_text(w) for w in text.split()} - {""})
            what = f"--words {words}"
        else:
            found, what = sorted({normalise_text(str(w)) for w in words} - {""}), "words"
        if not found:
            raise ConfigError(f"{what}: the word list is empty")
        for w in found:
            self.units.encode(w, what)
        return found

    def decoding(self, beam: int, words) -> Tuple[str, Any]:
        """``(decoder name, word constraint or None)`` for a beam width and an optional word list."""
        check_int("beam", beam, 1, MAX_BEAM)
        if words is None:
            return ("beam" if beam > 1 else "greedy"), None
        if beam <= 1:
            raise ConfigError("--words restricts the beam search: give --beam N (N > 1) too")
        key = words if isinstance(words, str) else tuple(words)
        if key not in self._constraints:
            from ..tasks.asr_decode import word_constraint

            self._constraints[key] = word_constraint(self.units, self.word_list(words))
        return "beam", self._constraints[key]

    # -- audio -----------------------------------------------------------------------------
    def waveform(self, audio: Audio) -> np.ndarray:
        """Mono float32 samples at the model's rate from a file path or ``(samples, rate)``."""
        from ..data.audio import load_audio, resample

        if isinstance(audio, (str, Path)):
            return load_audio(audio, self.sample_rate)
        if isinstance(audio, tuple) and len(audio) == 2:
            x, sr = audio
            x = np.asarray(x)
            if x.dtype.kind not in "fiu" or x.ndim not in (1, 2) or x.size == 0:
                raise InputError(f"audio samples must be a non-empty 1-D (or (n, channels)) numeric array, "
                                 f"got dtype {x.dtype}, shape {x.shape}")
            if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or not 1000 <= sr <= 384_000:
                raise InputError(f"sample rate must be an integer in [1000, 384000], got {sr!r}"[:200])
            if x.dtype.kind in "iu":
                x = x.astype(np.float32) / float(np.iinfo(x.dtype).max)
            x = (x.mean(axis=1) if x.ndim == 2 else x).astype(np.float32)
            if not np.isfinite(x).all():
                raise InputError("audio samples hold NaN or infinite values")
            return resample(x, int(sr), self.sample_rate) if sr != self.sample_rate else x
        raise InputError(f"audio must be a file path or a (samples, sample_rate) tuple, got {type(audio).__name__}")

    def chunks(self, wave: np.ndarray, chunk_seconds: float) -> List[Tuple[int, np.ndarray]]:
        """``(offset_samples, samples)`` pieces of at most ``chunk_seconds``, cut at quiet points."""
        sr = self.sample_rate
        n = max(int(chunk_seconds * sr), self.fe.cfg.win_length)
        if len(wave) <= n:
            return [(0, wave)]
        out, start, hop = [], 0, max(1, sr // 100)
        while len(wave) - start > n:
            lo = start + max(hop, n - 2 * sr)
            seg = wave[lo:start + n]
            if len(seg) < hop:
                cut = start + n
            else:
                energy = np.add.reduceat(seg.astype(np.float64) ** 2, np.arange(0, len(seg), hop))
                cut = max(lo + int(np.argmin(energy)) * hop, start + hop)
            out.append((start, wave[start:cut]))
            start = cut
        out.append((start, wave[start:]))
        return out

    # -- transcription ---------------------------------------------------------------------
    def transcribe(self, audio: Union[Audio, Sequence[Audio]], beam: int = 1, words=None, timestamps: bool = True,
                   chunk_seconds: float = 30.0) -> Union[Dict[str, Any], List[Dict[str, Any]]]:
        """``{"text", "words": [{"word", "start", "end", "confidence"}]}`` for one input, a list of
        them for a list; all chunks of all inputs run through the network together."""
        single = not isinstance(audio, list)
        items = [audio] if single else audio
        if not items:
            raise InputError("audio: the list is empty")
        check_float("chunk_seconds", chunk_seconds, 0.1, 3600.0)
        decoder, constraint = self.decoding(beam, words)
        waves = [self.waveform(a) for a in items]
        results = self.transcribe_waves(waves, decoder, beam, constraint, timestamps, chunk_seconds)
        return results[0] if single else results

    def transcribe_waves(self, waves: Sequence[np.ndarray], decoder: str, beam: int, constraint,
                         timestamps: bool, chunk_seconds: float) -> List[Dict[str, Any]]:
        from ..data.audio import normalise
        from ..tasks.asr_decode import decode, word_times

        pieces = []  # (input, offset, features)
        for i, wave in enumerate(waves):
            for offset, piece in self.chunks(wave, chunk_seconds):
                if len(piece) >= self.fe.cfg.win_length:
                    pieces.append((i, offset, normalise(self.fe(piece))))
        lps = self.net.posteriors([f for _, _, f in pieces]) if pieces else []
        out: List[Dict[str, Any]] = [{"text": "", "words": []} for _ in waves]
        for (i, offset, _), lp in zip(pieces, lps):
            ids = decode(lp, decoder, beam, constraint)
            text = self.units.words(ids)
            if not text:
                continue
            out[i]["text"] = (out[i]["text"] + " " + text).strip()
            if timestamps and ids:
                t0 = offset / self.sample_rate
                best = np.exp(lp.max(axis=1))  # (T',) the per-frame best posterior
                for w, (a, b) in zip(text.split(), word_times(lp, ids, self.units.space, self.frame_seconds)):
                    out[i]["words"].append({"word": w, "start": round(t0 + a * self.frame_seconds, 3),
                                            "end": round(t0 + b * self.frame_seconds, 3),
                                            "confidence": round(float(best[a:max(b, a + 1)].mean()), 4)})
        if not timestamps:
            for r in out:
                r.pop("words")
        return out

    # -- evaluation ------------------------------------------------------------------------
    def eval_items(self, data: Optional[str], split: Optional[str], fsdd_mode: Optional[str]):
        """``(source, items, scope)`` of what ``evaluate`` scores."""
        from ..data import speech as sp
        from ..data import speech_sets as sets

        d = self.data_cfg
        given = data
        data = data or d["data"]
        split = split or "test"
        if fsdd_mode and data != "fsdd":
            raise ConfigError(f"--fsdd-mode applies to --data fsdd only; {data} is scored as its manifest says")
        if data == "fsdd":
            if split not in ("val", "test"):
                raise ConfigError(f"--split {split}: an fsdd checkpoint is scored on val or test")
            if d["data"] != "fsdd":
                d = {**d, "test_speaker": None, "val_recordings": 5, "fsdd_mode": "connected", "min_digits": 1,
                     "max_digits": 7, "eval_passes": 4}
            if fsdd_mode:
                d = {**d, "fsdd_mode": fsdd_mode}
            if split == "val" and d.get("val_recordings", 5) == 0:
                raise ConfigError(f"{self.path}: trained with --val-recordings 0, so it has no validation split; "
                                  "score --split test")
            source, _, val_items, test_items = sets.fsdd_sets(d, self.sample_rate)
            scope = (f"fsdd {d['fsdd_mode']} {split}, "
                     + (f"speaker {d['test_speaker']} left out" if d.get("test_speaker") else "standard split"))
            return source, (val_items if split == "val" else test_items), scope
        if given is None:
            if split != "val":
                raise ConfigError(f"{data}: the checkpoint was trained on a manifest; give --data TEST-MANIFEST "
                                  "(or --split val for its validation part)")
            source, _, items = sets.file_sets(d, self.sample_rate, d.get("seed", 0))
            return source, items, f"{data} validation part"
        return sets.FileSource(self.sample_rate, d.get("max_seconds", 30.0)), sp.read_manifest(data), str(data)

    def evaluate(self, data: Optional[str] = None, split: Optional[str] = None, beam: int = 1, words=None,
                 fsdd_mode: Optional[str] = None) -> Dict[str, Any]:
        """WER, CER (PER for phonemes) and utterance accuracy: the dict of ``rnnkit evaluate --json``."""
        from ..data import speech_sets as sets
        from ..tasks.asr_decode import score_posteriors

        decoder, constraint = self.decoding(beam, words)
        source, items, scope = self.eval_items(data, split, fsdd_mode)
        sets.check_transcripts(self.units, source, items, str(data or self.data_cfg["data"]))
        feats = sets.featurise(source, items, self.fe)
        m, _ = score_posteriors(self.net.posteriors(feats), self.units, [source.text(it) for it in items],
                                decoder, beam, constraint)
        return {"checkpoint": str(self.path), "data": scope, "decoder": decoder, "beam": beam,
                "units": self.units.kind, **m}

    def describe(self, result: Dict[str, Any]) -> str:
        unit = "PER" if result["units"] == "phonemes" else "CER"
        return (f"{result['data']}: WER {result['wer']:.4f}, {unit} {result['cer']:.4f}, utterance accuracy "
                f"{result['accuracy']:.4f} over {result['utterances']} utterances ({result['words']} words; "
                f"{result['decoder']} decoding)")


__all__ = ["AsrPredictor", "UserError"]
