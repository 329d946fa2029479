"""Recipe for ``forecast``: a time-indexed table -> chronological windows -> encoder + head.

Training windows are shuffled per epoch from ``(run seed, epoch)`` (windows are
independent examples; time is never shuffled *across* the split, which is chronological);
validation is one fixed pass over the validation windows. The data config saved with the
checkpoint holds the resolved column roles, split dates, frequencies, category lists and
scaler means/scales as plain numbers, so ``rnnkit forecast``/``backtest`` rebuild exactly
the same features from a CSV without refitting anything.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Dict, Optional, Tuple

import lightning as L
import numpy as np
import torch

from ...data import timeseries as ts
from ...tasks import forecast as fc
from ..datamodule import EpochBatches, FixedBatches, loader
from . import Prepared


def _tensors(b: Dict[str, Any]) -> Dict[str, Any]:
    return {k: torch.from_numpy(v) for k, v in b.items()}


class WindowDataModule(L.LightningDataModule):
    """Forecast windows: endless seeded training epochs, one fixed validation pass."""

    def __init__(self, data: ts.TSData, batch_size: int, seed: int, start: Tuple[int, int] = (0, 0)) -> None:
        super().__init__()
        self.data, self.batch_size, self.seed, self.start = data, batch_size, seed, start

    def make_epoch(self, epoch: int) -> list:
        n = len(self.data.windows["train"])
        order = np.random.default_rng([self.seed, epoch]).permutation(n)
        return [order[i:i + self.batch_size] for i in range(0, n, self.batch_size)]

    def train_dataloader(self):
        rank, world = self.trainer.global_rank, self.trainer.world_size
        return loader(EpochBatches(self.make_epoch, lambda idx: _tensors(self.data.batch(idx, "train")),
                                   self.start, rank, world))

    def val_dataloader(self):
        n = len(self.data.windows["val"])
        if n == 0:
            return []
        batches = [np.arange(i, min(n, i + 256)) for i in range(0, n, 256)]
        return loader(FixedBatches(batches, lambda idx: _tensors(self.data.batch(idx, "val"))))


def spec_from_config(data_cfg: Dict[str, Any]) -> ts.Spec:
    return ts.resolve_spec({k: v for k, v in data_cfg.items() if k != "batch_size"})


def evaluate_split(encoder, task, data: ts.TSData, split: str) -> Dict[str, float]:
    """Headline metrics of the model on one split, in original units."""
    if len(data.windows[split]) == 0:
        return {}
    pred = fc.run_windows(encoder, task, data, split)
    w = data.windows[split]
    if data.spec.event:
        label = np.array([data.series[s].event[e + data.spec.horizon] for s, e in w])
        m = fc.event_metrics(label, pred["prob"])
        return {f"{split}_auc": m["roc_auc"], f"{split}_brier": m["brier"], f"{split}_log_loss": m["log_loss"]}
    from ...tasks.forecast_baselines import naive_scale, truth

    y = truth(data, split)
    yhat = np.stack([data.to_units(s, e, pred["mean"][i]) for i, (s, e) in enumerate(w)])
    m = fc.point_metrics(y, yhat, naive_scale(data, split))
    return {f"{split}_{k}": v for k, v in m.items()}


def prepare(cfg, saved_data: Optional[Dict[str, Any]], start: Optional[Tuple[int, int]]) -> Prepared:
    spec = spec_from_config(asdict(cfg.data))
    frame = ts.read_table(spec)
    # a resumed run transforms its own training table with the state it saved (refits nothing)
    data = ts.fit_transform(frame, spec) if saved_data is None else ts.transform(frame, spec, saved_data, training=True)
    encoder, task = fc.build_for(asdict(cfg.model), data)
    dm = WindowDataModule(data, cfg.data.batch_size, cfg.run.seed, start or (0, 0))

    def final_eval(module) -> Dict[str, float]:
        return evaluate_split(module.encoder, module.task, data, "val")

    info = {"data": spec.data, "series": len(data.series), "features": len(data.feature_names),
            "frequency": ",".join(sorted(set(s.freq for s in data.series))),
            "train windows": len(data.windows["train"]), "validation windows": len(data.windows["val"]),
            "test windows": len(data.windows["test"]), "validation from": data.state["val_start"][:10],
            "test from": data.state["test_start"][:10]}
    return Prepared(dm, encoder, task, data.state, final_eval, info)
