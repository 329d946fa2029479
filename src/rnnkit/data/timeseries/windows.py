"""The prepared data set (:class:`TSData`: scaled features per series, the saved state)
and its windows: which end rows make a complete window, the chronological split of
windows, the most recent window of a series, and the naive MAE used as MASE scale."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ...errors import DataError
from .calendar import calendar_features, future_times
from .spec import Spec

@dataclass
class Series:
    name: str
    times: np.ndarray  # (n,) datetime64
    rows: np.ndarray  # (n,) CSV line numbers
    y: np.ndarray  # (n, K) observed targets in original units (NaN where missing)
    feats: np.ndarray  # (n, C) float32 scaled model inputs (NaN in a row: the row is unusable)
    segment: np.ndarray  # (n,) contiguous-run id (cut at gaps)
    event: Optional[np.ndarray] = None  # (n,) 0/1/NaN
    freq: str = "D"


@dataclass
class TSData:
    spec: Spec
    series: List[Series]
    feature_names: List[str]
    target_index: List[int]  # columns of feats holding the (transformed) targets
    state: Dict[str, Any]  # scalers, categories, split dates, frequencies: the saved data config
    windows: Dict[str, np.ndarray] = field(default_factory=dict)  # split -> (N, 2) [series, end row]

    # -- scaling of targets -----------------------------------------------------------------
    def target_scale(self, s: int) -> Tuple[np.ndarray, np.ndarray]:
        """(mean, scale) of the transformed targets of series ``s``: (K,), (K,)."""
        sc = self.state["scalers"]
        key = self.series[s].name if self.spec.scaler == "series" else "__global__"
        k = len(self.target_index)
        return np.asarray(sc[key]["mean"][:k]), np.asarray(sc[key]["scale"][:k])

    def output_targets(self, s: int, end: int, horizon: int) -> np.ndarray:
        """The scaled training targets of a window ending at row ``end``: (H, K)."""
        ser = self.series[s]
        mean, scale = self.target_scale(s)
        fut = ser.y[end + 1:end + 1 + horizon]  # (H, K)
        tr = self.spec.transform
        if tr == "levels":
            return (fut - mean) / scale
        f = np.log if tr == "logret" else (lambda v: v)
        return (f(fut) - f(ser.y[end])) / scale

    def to_units(self, s: int, end: int, out: np.ndarray) -> np.ndarray:
        """Model outputs (..., H, K) in scaled transformed space -> original units."""
        mean, scale = self.target_scale(s)
        tr = self.spec.transform
        last = self.series[s].y[end]
        if tr == "levels":
            return out * scale + mean
        if tr == "diff":
            return last + out * scale
        return last * np.exp(out * scale)

    def x(self, s: int, end: int) -> np.ndarray:
        """Inputs of the window ending at row ``end``: (L, C)."""
        L = self.spec.lookback
        return self.series[s].feats[end - L + 1:end + 1]

    def batch(self, idx: np.ndarray, split: str) -> Dict[str, Any]:
        w = self.windows[split][idx]
        x = np.stack([self.x(s, e) for s, e in w]).astype(np.float32)  # (B, L, C)
        out = {"x": x}
        if self.spec.event:
            h = self.spec.horizon
            out["event"] = np.array([self.series[s].event[e + h] for s, e in w], dtype=np.float32)  # (B,)
        else:
            out["y"] = np.stack([self.output_targets(s, e, self.spec.horizon) for s, e in w]).astype(np.float32)
        return out


def naive_mae(ser: Series, val_start, season: int = 1) -> List[Optional[float]]:
    """In-sample MAE of the (seasonal) naive forecast on the training rows, per target (MASE scale)."""
    tr = ser.times < val_start
    y, seg = ser.y[tr], ser.segment[tr]
    if len(y) <= season:
        return [None] * ser.y.shape[1]
    d = np.abs(y[season:] - y[:-season])[seg[season:] == seg[:-season]]
    out = []
    for j in range(y.shape[1]):
        v = d[:, j][~np.isnan(d[:, j])] if len(d) else np.zeros(0)
        out.append(float(v.mean()) if len(v) and v.mean() > 0 else None)
    return out


def window_ends(ser: Series, spec: Spec) -> np.ndarray:
    """Rows ``t`` where a window of ``lookback`` inputs ends with its label(s) present, inside one segment."""
    n, L, H = len(ser.times), spec.lookback, spec.horizon
    ok_row = ~np.isnan(ser.feats).any(axis=1)
    ends = []
    # cumulative count of bad rows to test a whole window at once
    bad = np.concatenate([[0], np.cumsum(~ok_row)])
    for t in range(L - 1, n - H):
        lo = t - L + 1
        if ser.segment[lo] != ser.segment[t + H]:
            continue
        if bad[t + 1] - bad[lo] > 0:
            continue
        if spec.event:
            if np.isnan(ser.event[t + H]):
                continue
        elif np.isnan(ser.y[t:t + H + 1]).any():
            continue
        ends.append(t)
    return np.asarray(ends, dtype=np.int64)


def make_windows(data: TSData, val_start, test_start, require_train: bool = True) -> None:
    spec = data.spec
    out = {"train": [], "val": [], "test": []}
    for s, ser in enumerate(data.series):
        ends = window_ends(ser, spec)
        if len(ends) == 0:
            continue
        origin = ser.times[ends]
        last_label = ser.times[ends + spec.horizon]
        tr = ends[last_label < val_start]
        va = ends[(origin >= val_start) & (last_label < test_start)]
        te = ends[origin >= test_start]
        for k, v in (("train", tr), ("val", va), ("test", te)):
            out[k].append(np.column_stack([np.full(len(v), s), v]))
    for k, v in out.items():
        data.windows[k] = np.vstack(v) if v else np.zeros((0, 2), dtype=np.int64)
    need = spec.lookback + max(spec.horizon, 1)
    if require_train and len(data.series) > 1:
        for ser in data.series:
            if len(ser.times) < need:
                raise DataError(f"{spec.data}: series {ser.name!r} has {len(ser.times)} rows, fewer than --lookback "
                                f"{spec.lookback} + --horizon {max(spec.horizon, 1)} = {need}; drop it or shorten the window")
    if require_train and len(data.windows["train"]) == 0:
        short = min(data.series, key=lambda se: len(se.times))
        who = f"series {short.name!r}" if (spec.group or spec.wide) else "the series"
        raise DataError(f"{spec.data}: no training window: {who} has {len(short.times)} rows "
                        f"({int((short.times < val_start).sum())} before the validation start), but a window needs "
                        f"--lookback {spec.lookback} + --horizon {max(spec.horizon, 1)} = {need} consecutive rows")


def last_window(ser: Series, spec: Spec, data_name: str) -> int:
    """End row of the most recent complete input window of a series (for `forecast`)."""
    L = spec.lookback
    n = len(ser.times)
    if n < L:
        raise DataError(f"{data_name}: series {ser.name!r} has {n} rows, fewer than the model's lookback {L}")
    t = n - 1
    lo = t - L + 1
    if ser.segment[lo] != ser.segment[t] or np.isnan(ser.feats[lo:t + 1]).any():
        raise DataError(f"{data_name}: series {ser.name!r}: the last {L} rows are not a complete window "
                        f"(a gap or missing values); --missing ffill may help")
    return t


def rollout_inputs(data: TSData, windows: np.ndarray, horizon: int, n_targets: int) -> Tuple[np.ndarray, np.ndarray]:
    """What an autoregressive rollout appends besides its predictions: the calendar features of
    each future step ``(B, H, F)`` and the offset of a target's input row ``(B, K)`` (0 for
    levels; mean / scale for changes, whose input is ``(d - mean) / scale``). One home for
    the torch rollout (:func:`rnnkit.tasks.forecast.rollout`) and the ONNX one."""
    cal, offset = [], []
    for s, e in windows:
        ser = data.series[int(s)]
        future = future_times(ser.times[e], ser.freq, horizon)
        cal.append(calendar_features(np.array(future, dtype="datetime64[ns]"), ser.freq) if data.spec.calendar
                   else np.zeros((horizon, 0)))
        mean, scale = data.target_scale(int(s))
        offset.append(np.zeros(n_targets) if data.spec.transform == "levels" else mean / scale)
    return np.stack(cal), np.stack(offset)
