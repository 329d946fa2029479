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
from ...data.audio import LogMel, add_noise, normalise, spec_augment
from ...data.speech_sets import check_transcripts, featurise, feature_config, file_sets, fsdd_sets, make_units
from ...tasks import asr
from ...tasks.asr import score
from ..datamodule import EpochBatches, FixedBatches, bucketed_batches, loader
from . import Prepared


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
        m, hyps = score(module.encoder, module.task, units, val_feats, val_texts)
        if not any(h.strip() for h in hyps):
            print(f"rnnkit: warning: the model outputs only blanks on validation (WER {m['wer']:.2f}): it has not "
                  f"learned yet; train longer (a larger --max-steps or --max-time; configs/asr-fsdd-*.yaml train "
                  f"for minutes) or raise --lr", file=sys.stderr)
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
