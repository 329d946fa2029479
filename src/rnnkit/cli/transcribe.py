"""``rnnkit transcribe CKPT a.wav [b.flac ...]``, and the ``asr`` evaluator of ``rnnkit evaluate``.

Transcription goes on past a file it cannot read: the problem is reported on stderr as one
line (``rnnkit: error: FILE: ...``) and the exit code is 2 at the end if any file failed.
Long recordings are cut into chunks of at most ``--chunk-seconds`` at the quietest 10 ms
near each boundary and decoded chunk by chunk (timestamps stay absolute).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

from ..errors import ConfigError, UserError
from .common import limited


def register(sub) -> None:
    p = sub.add_parser("transcribe", help="transcribe audio files with an asr checkpoint",
                       description="Print the transcript of each audio file (WAV, FLAC, OGG, ...).")
    p.add_argument("checkpoint", metavar="CKPT", help="asr checkpoint directory")
    p.add_argument("files", metavar="AUDIO", nargs="+", help="audio files")
    p.add_argument("--timestamps", action="store_true", help="per-word start and end times (s) from the CTC alignment")
    add_asr_decoding_flags(p)
    p.add_argument("--chunk-seconds", type=limited("--chunk-seconds", "chunk_seconds"), default=30.0, help="decode long files in chunks of at most this (default: 30)")
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    p.add_argument("--threads", type=limited("--threads", "threads"), default=None, help="torch CPU threads")
    p.set_defaults(func=cmd_transcribe)


def add_asr_decoding_flags(p, beam: bool = True) -> None:
    if beam:
        p.add_argument("--beam", type=limited("--beam", "transcribe.beam"), default=1,
                       help="CTC prefix beam width; 1 = greedy (default: 1)")
    p.add_argument("--words", default=None, metavar="train|FILE",
                   help="beam search may only spell these words: 'train' (the training transcripts' words) "
                        "or a file of words, one per line")


class Recogniser:
    """A loaded asr checkpoint: features, network, units and decoder settings."""

    def __init__(self, checkpoint: str, beam: int = 1, words: Optional[str] = None,
                 threads: Optional[int] = None) -> None:
        from .. import checkpoint as ckpt_io

        self.ckpt = ckpt_io.load_checkpoint(Path(checkpoint), expect_task=["asr"])
        import numpy as np
        import torch

        if threads:
            torch.set_num_threads(threads)
        from ..data import speech as sp
        from ..data.audio import LogMel
        from ..tasks import asr
        from ..training.recipes import asr as recipe

        cfg = self.ckpt.config
        self.model_cfg, self.data_cfg = cfg["model"], cfg["data"]
        self.units = sp.Units.from_json(self.data_cfg["units"])
        self.fe = LogMel(recipe.feature_config(self.model_cfg))
        self.encoder, self.task = asr.build(self.model_cfg, len(self.units))
        torch.nn.ModuleDict({"encoder": self.encoder, "task": self.task}).load_state_dict(
            {k: torch.from_numpy(np.array(v)) for k, v in self.ckpt.weights.items()})
        self.encoder.eval(), self.task.eval()
        self.decoder = "beam" if beam > 1 else "greedy"
        self.beam = beam
        self.constraint = None
        if words is not None:
            if beam <= 1:
                raise ConfigError("--words restricts the beam search: give --beam N (N > 1) too")
            vocab = self._words(words)
            self.constraint = recipe.word_constraint(self.units, vocab)
        self.frame_seconds = self.fe.cfg.hop_ms / 1000 * self.model_cfg["subsample"]

    def _words(self, spec: str) -> List[str]:
        from ..data.speech import normalise_text

        if spec == "train":
            words = self.data_cfg.get("words") or []
            if not words:
                raise ConfigError("--words train: this checkpoint did not record its training words; give a file")
            return list(words)
        path = Path(spec)
        try:
            words = sorted({normalise_text(w) for w in path.read_text(encoding="utf-8").split()})
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"--words {spec}: cannot read word list ({e.__class__.__name__})") from None
        if not words:
            raise ConfigError(f"--words {spec}: the word list is empty")
        for w in words:
            self.units.encode(w, f"--words {spec}")
        return words

    def chunks(self, wave, chunk_seconds: float):
        """``(offset_samples, samples)`` pieces of at most ``chunk_seconds``, cut at quiet points."""
        import numpy as np

        sr = self.fe.cfg.sample_rate
        n = int(chunk_seconds * sr)
        if len(wave) <= n:
            return [(0, wave)]
        out, start, hop = [], 0, max(1, sr // 100)
        while len(wave) - start > n:
            lo = start + max(hop, n - 2 * sr)
            seg = wave[lo:start + n]
            energy = np.add.reduceat(seg.astype(np.float64) ** 2, np.arange(0, len(seg), hop))
            cut = lo + int(np.argmin(energy)) * hop
            cut = max(cut, start + hop)
            out.append((start, wave[start:cut]))
            start = cut
        out.append((start, wave[start:]))
        return out

    def transcribe_wave(self, wave, timestamps: bool = False, chunk_seconds: float = 30.0):
        from ..data.audio import normalise
        from ..tasks import asr

        sr = self.fe.cfg.sample_rate
        words, stamps = [], []
        for offset, piece in self.chunks(wave, chunk_seconds):
            if len(piece) < self.fe.cfg.win_length:
                continue
            lp = asr.posteriors(self.encoder, self.task, [normalise(self.fe(piece))])[0]
            ids = asr.decode(lp, self.decoder, self.beam, self.constraint)
            text = self.units.words(ids)
            words.extend(text.split())
            if timestamps and ids:
                spans = asr.word_times(lp, ids, self.units.space, self.frame_seconds)
                t0 = offset / sr
                for w, (a, b) in zip(text.split(), spans):
                    stamps.append({"word": w, "start": round(t0 + a * self.frame_seconds, 3),
                                   "end": round(t0 + b * self.frame_seconds, 3)})
        return " ".join(words), stamps


def cmd_transcribe(args) -> int:
    if not args.chunk_seconds > 0:
        raise ConfigError(f"--chunk-seconds must be > 0, got {args.chunk_seconds}")
    rec = Recogniser(args.checkpoint, args.beam, args.words, args.threads)
    from ..data.audio import load_audio

    failed = 0
    for f in args.files:
        try:
            wave = load_audio(f, rec.fe.cfg.sample_rate)
        except UserError as e:
            failed += 1
            print(f"rnnkit: error: {e}", file=sys.stderr, flush=True)
            continue
        text, stamps = rec.transcribe_wave(wave, args.timestamps, args.chunk_seconds)
        if args.json:
            obj = {"file": f, "text": text}
            if args.timestamps:
                obj["words"] = stamps
            print(json.dumps(obj), flush=True)
        elif args.timestamps:
            print(f"{f}\t{text}\t" + " ".join(f"{s['word']}[{s['start']:.2f}-{s['end']:.2f}]" for s in stamps), flush=True)
        else:
            print(f"{f}\t{text}", flush=True)
    if failed:
        print(f"rnnkit: error: {failed} of {len(args.files)} files could not be transcribed", file=sys.stderr)
        return 2
    return 0


# ---------------------------------------------------------------------------------------
# rnnkit evaluate CKPT (asr)


def evaluate_asr(args) -> int:
    beam = getattr(args, "beam", 1) or 1
    rec = Recogniser(args.checkpoint, beam, getattr(args, "words", None), args.threads)
    from ..data import speech as sp
    from ..training.recipes import asr as recipe

    d = rec.data_cfg
    data = args.data or d["data"]
    split = getattr(args, "split", None) or "test"
    sr = rec.model_cfg["sample_rate"]
    if getattr(args, "fsdd_mode", None) and data != "fsdd":
        raise ConfigError(f"--fsdd-mode applies to --data fsdd only; {data} is scored as its manifest says")
    if data == "fsdd":
        if split not in ("val", "test"):
            raise ConfigError(f"--split {split}: an fsdd checkpoint is scored on val or test")
        if d["data"] != "fsdd":
            d = {**d, "test_speaker": None, "val_recordings": 5, "fsdd_mode": "connected", "min_digits": 1,
                 "max_digits": 7, "eval_passes": 4}
        if getattr(args, "fsdd_mode", None):
            d = {**d, "fsdd_mode": args.fsdd_mode}
        if split == "val" and d.get("val_recordings", 5) == 0:
            raise ConfigError(f"{args.checkpoint}: trained with --val-recordings 0, so it has no validation split; "
                              "score --split test")
        source, _, val_items, test_items = recipe.fsdd_sets(d, sr)
        items = val_items if split == "val" else test_items
        scope = (f"fsdd {d['fsdd_mode']} {split}, "
                 + (f"speaker {d['test_speaker']} left out" if d.get("test_speaker") else "standard split"))
    elif args.data is None:
        if split != "val":
            raise ConfigError(f"{data}: the checkpoint was trained on a manifest; give --data TEST-MANIFEST "
                              "(or --split val for its validation part)")
        source, _, items = recipe.file_sets(d, sr, d.get("seed", 0))
        scope = f"{data} validation part"
    else:
        source = recipe.FileSource(sr, d.get("max_seconds", 30.0))
        items = sp.read_manifest(data)
        scope = str(data)
    recipe.check_transcripts(rec.units, source, items, str(data))
    feats = recipe.featurise(source, items, rec.fe)
    m, _ = recipe.score(rec.encoder, rec.task, rec.units, feats, [source.text(it) for it in items],
                        rec.decoder, rec.beam, rec.constraint)
    result = {"checkpoint": str(args.checkpoint), "data": scope, "decoder": rec.decoder, "beam": rec.beam,
              "units": rec.units.kind, **m}
    if args.json:
        print(json.dumps(result))
    else:
        unit = "PER" if rec.units.kind == "phonemes" else "CER"
        print(f"{scope}: WER {m['wer']:.4f}, {unit} {m['cer']:.4f}, utterance accuracy {m['accuracy']:.4f} "
              f"over {m['utterances']} utterances ({m['words']} words; {rec.decoder} decoding)")
    return 0
