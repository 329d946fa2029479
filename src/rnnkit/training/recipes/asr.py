"""Recipe for ``asr``: FSDD digits (single or connected) or a manifest -> log-mel -> CTC.

Training batches are built on the fly from waveforms: FSDD connected-digit utterances are
re-composed every epoch (a fresh random grouping of each speaker's training clips, fresh gaps
and noise), then each utterance gets its own augmentation draw (speed, noise, SpecAugment)
from a generator seeded by ``(seed, epoch, batch, position)``, so a resumed run sees exactly
the batches an uninterrupted one would. Validation and test sets are fixed (composed with a
fixed seed, independent of the run's), featurised once, never augmented.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import lightning as L
import numpy as np

from ...data import speech as sp
from ...data.audio import FeatureConfig, LogMel, add_noise, load_audio, normalise, spec_augment, speed_perturb
from ...errors import DataError
from ...tasks import asr
from ..datamodule import EpochBatches, FixedBatches, bucketed_batches, loader
from . import Prepared

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
            from ...data.audio import audio_info

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


# ---------------------------------------------------------------------------------------
# the data module


class SpeechDataModule(L.LightningDataModule):
    def __init__(self, source, units: sp.Units, fe: LogMel, data: Dict[str, Any], seed: int,
                 train_items=None, train_pool=None, val_feats=None, val_labels=None,
                 start: Tuple[int, int] = (0, 0)) -> None:
        super().__init__()
        self.source, self.units, self.fe, self.d, self.seed = source, units, fe, data, seed
        self.train_items, self.train_pool = train_items, train_pool
        self.val_feats, self.val_labels = val_feats, val_labels
        self.start = start
        self._epoch_cache: Tuple[int, list] = (-1, [])

    def epoch_items(self, epoch: int) -> list:
        if self.train_pool is None:
            return self.train_items
        clips = self.source.clips
        if self.d["fsdd_mode"] == "single":
            return sp.single_plan(clips, self.train_pool)
        rng = np.random.default_rng([self.seed, epoch, 11])
        plan = sp.compose_plan(clips, self.train_pool, rng, self.d["min_digits"], self.d["max_digits"],
                               self.fe.cfg.sample_rate)
        # checkpoints from before --single-fraction existed trained on compositions only
        fraction = self.d.get("single_fraction", 0.0)
        alone = rng.choice(len(self.train_pool), int(round(fraction * len(self.train_pool))), replace=False)
        return plan + sp.single_plan(clips, [self.train_pool[i] for i in sorted(alone)])

    def make_epoch(self, epoch: int) -> list:
        if self._epoch_cache[0] == epoch:
            return self._epoch_cache[1]
        items = self.epoch_items(epoch)
        lengths = np.array([self.source.length(it) for it in items])
        rng = np.random.default_rng([self.seed, epoch])
        batches = bucketed_batches(lengths, self.d["batch_size"], rng)
        out = []
        for b, idx in enumerate(batches):
            out.append([(items[i], (self.seed, epoch, b, k)) for k, i in enumerate(idx)])
        self._epoch_cache = (epoch, out)
        return out

    def augmented(self, item, key) -> Tuple[np.ndarray, List[int]]:
        d = self.d
        rng = np.random.default_rng(list(key))
        speed = float(rng.uniform(1 - d["speed_perturb"], 1 + d["speed_perturb"])) if d["speed_perturb"] else 1.0
        wave = self.source.wave(item, speed)
        if d["noise_snr"] > 0 and rng.random() < 0.5:
            wave = add_noise(wave, float(rng.uniform(d["noise_snr"], d["noise_snr"] + 20)), rng)
        # drawn only when asked, so runs without it keep their random streams
        warp = float(rng.uniform(1 - d["vtlp"], 1 + d["vtlp"])) if d.get("vtlp") else 1.0
        feats = normalise(self.fe(wave, warp))
        if d["spec_augment"]:
            feats = spec_augment(feats, rng, d["freq_masks"], d["freq_width"], d["time_masks"], d["time_width"])
        return feats, self.units.encode(self.source.text(item), self.source.name(item))

    def collate_train(self, batch) -> Dict[str, Any]:
        feats, labels = zip(*(self.augmented(it, key) for it, key in batch))
        return {**asr.pad_features(feats), **asr.pad_labels(labels)}

    def collate_val(self, idx) -> Dict[str, Any]:
        return {**asr.pad_features([self.val_feats[i] for i in idx]),
                **asr.pad_labels([self.val_labels[i] for i in idx])}

    def train_dataloader(self):
        world, rank = self.trainer.world_size, self.trainer.global_rank
        return loader(EpochBatches(self.make_epoch, self.collate_train, self.start, rank, world))

    def val_dataloader(self):
        if not self.val_feats:
            return []
        order = np.argsort([len(f) for f in self.val_feats], kind="stable")
        bs = self.d["batch_size"]
        return loader(FixedBatches([order[i:i + bs] for i in range(0, len(order), bs)], self.collate_val))


# ---------------------------------------------------------------------------------------
# scoring


def score(encoder, task, units: sp.Units, feats: Sequence[np.ndarray], texts: Sequence[str],
          decoder: str = "greedy", beam_size: int = 8, constraint=None) -> Tuple[Dict[str, float], List[str]]:
    """Decode ``feats`` and compare with ``texts``: WER, CER (PER for phonemes), accuracy."""
    lps = asr.posteriors(encoder, task, feats)
    ids = [asr.decode(lp, decoder, beam_size, constraint) for lp in lps]
    hyps = [units.words(i) for i in ids]
    refs = [sp.normalise_text(t) for t in texts]
    m = asr.error_rates(refs, hyps, [units.reference(t) for t in texts], [units.unit_string(i) for i in ids],
                        phonemes=units.kind == "phonemes")
    return m, hyps


def too_short(source, items: Sequence, units: sp.Units, fe: LogMel, subsample: int, speed_perturb: float) -> Tuple[int, int]:
    """How many ``items`` have fewer output frames than CTC needs for their transcript
    (:func:`~rnnkit.tasks.asr.ctc_min_frames`): as recorded, and at the fastest speed perturbation."""
    short = short_fast = 0
    for it in items:
        need = asr.ctc_min_frames(units.encode(source.text(it)))
        n = source.length(it)
        short += asr.out_frames(fe.frames(n), subsample) < need
        short_fast += asr.out_frames(fe.frames(int(n / (1 + speed_perturb))), subsample) < need
    return short, short_fast


def word_constraint(units: sp.Units, words: Sequence[str]):
    return asr.WordConstraint.from_words([units.encode(w) for w in words], units.space)


def prepare(cfg, saved_data: Optional[Dict[str, Any]], start: Optional[Tuple[int, int]]) -> Prepared:
    model, d = asdict(cfg.model), asdict(cfg.data)
    units = sp.Units.from_json(saved_data["units"]) if saved_data else make_units(model)
    fe = LogMel(feature_config(model))
    seed = cfg.run.seed if not saved_data else saved_data.get("seed", cfg.run.seed)
    if d["data"] == "fsdd":
        source, pool, val_items, test_items = fsdd_sets(d, model["sample_rate"])
        train_items = None
        info_train = f"{len(pool)} clips ({d['fsdd_mode']})"
        train_texts = sorted(sp.DIGIT_WORDS)
    else:
        source, train_items, val_items = file_sets(d, model["sample_rate"], seed)
        pool = None
        check_transcripts(units, source, train_items, "training data")
        for it in train_items:  # headers only: an unreadable file fails now, not mid-training
            source.length(it)
        info_train = f"{len(train_items)} utterances"
        train_texts = sorted({w for it in train_items for w in sp.normalise_text(it.text).split()})
        test_items = []
    # single recordings are presented alone in single mode, and some of them in connected mode
    alone = (train_items if pool is None else sp.single_plan(source.clips, pool)
             if d["fsdd_mode"] == "single" or d.get("single_fraction", 0) > 0 else [])
    short, short_fast = too_short(source, alone, units, fe, model["subsample"], d["speed_perturb"])
    if short_fast:
        sped = f" ({short_fast} when sped up by --speed-perturb {d['speed_perturb']})" if d["speed_perturb"] else ""
        shown = ("presented alone" if pool is None or d["fsdd_mode"] == "single" else
                 f"presented alone (--single-fraction {d['single_fraction']} of them each epoch; inside "
                 f"compositions they have room)")
        print(f"rnnkit: {short} of {len(alone)} training recordings are too short for their transcripts after "
              f"--subsample {model['subsample']}{sped}: CTC needs one output frame per unit, plus one between "
              f"repeated units; {shown}, they add nothing to training and cannot be transcribed in full"
              + ("; --subsample 2 gives them twice the frames" if model["subsample"] == 4 else ""),
              file=sys.stderr, flush=True)
    val_labels = check_transcripts(units, source, val_items, "validation data")
    val_feats = featurise(source, val_items, fe)
    encoder, task = asr.build(model, len(units))
    dm = SpeechDataModule(source, units, fe, d, seed, train_items, pool, val_feats, val_labels, start or (0, 0))
    val_texts = [source.text(it) for it in val_items]

    def final_eval(module) -> Dict[str, float]:
        if not val_feats:  # --val-recordings 0
            return {}
        m, _ = score(module.encoder, module.task, units, val_feats, val_texts)
        return {"val_wer": m["wer"], "val_cer": m["cer"], "val_accuracy": m["accuracy"]}

    data_config = {**d, "data": d["data"] if d["data"] == "fsdd" else str(Path(d["data"]).resolve()),
                   "units": units.to_json(), "seed": seed,
                   "words": train_texts if len(train_texts) <= 50000 else []}
    info = {"data": d["data"], "train": info_train, "validation": f"{len(val_items)} utterances",
            "units": f"{units.kind} ({len(units)} incl. blank)",
            "parameters": sum(p.numel() for p in list(encoder.parameters()) + list(task.parameters()))}
    if test_items:
        info["test"] = f"{len(test_items)} utterances (not used in training)"
    return Prepared(dm, encoder, task, data_config, final_eval, info)
