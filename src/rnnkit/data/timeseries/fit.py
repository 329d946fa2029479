"""Fit and transform, the scikit-learn way: :func:`fit` learns the state of a forecasting
data set from the training part of a table, :func:`transform` turns any table into
:class:`~.windows.TSData` with a given state, refitting nothing.

The state is the checkpoint's data config, plain JSON: the resolved spec, series names,
split dates, frequencies per series, category lists, scaler means/scales (per series or
``__global__``), feature names, and training-part statistics for the backtest
(``naive_mae`` per series, or ``event_base_rate``). Training runs
``fit_transform(frame, spec)`` (= ``transform(frame, spec, fit(frame, spec), training=True)``
without doing the work twice); ``rnnkit forecast``/``backtest`` run
``transform(frame, spec, checkpoint_state)``: the same code builds the features both times.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ...errors import ConfigError, DataError, shown
from .calendar import calendar_features, default_max_gap, infer_freq, steps_between
from .spec import Spec
from .table import read_table, target_columns, target_names, tidy_frame
from .windows import Series, TSData, make_windows, naive_mae


def fit(frame, spec: Spec) -> Dict[str, Any]:
    """The state fitted on the training rows of ``frame`` (a raw table, as :func:`read_table` gives)."""
    return fit_transform(frame, spec).state


def fit_transform(frame, spec: Spec) -> TSData:
    """Fit the state on ``frame``'s training rows and transform ``frame`` with it (a training run)."""
    df = tidy_frame(frame, spec)
    data = _transform(df, spec, _fit(df, spec), training=True)
    state = data.state
    # training-part statistics the backtest needs even on a CSV of recent rows only
    if spec.event:
        w = data.windows["train"]
        state["event_base_rate"] = float(np.mean([data.series[s].event[e + spec.horizon] for s, e in w]))
    else:
        val_start = np.datetime64(state["val_start"])
        state["naive_mae"] = {ser.name: naive_mae(ser, val_start) for ser in data.series}
    return data


def transform(frame, spec: Spec, state: Dict[str, Any], training: bool = False) -> TSData:
    """``frame`` (a raw table) -> :class:`TSData` with a fitted ``state``, refitting nothing.

    ``training=False`` (inference): a series or category the state never saw is refused, and
    a table without a training window is fine. ``training=True`` (the training table itself,
    e.g. on resume): a category first seen after the validation start encodes as no category
    (all-zero one-hot), as it did when the state was fitted, and a training window is required.
    """
    return _transform(tidy_frame(frame, spec), spec, state, training)


def build(spec: Spec, df=None, saved: Optional[Dict[str, Any]] = None) -> TSData:
    """Read ``spec.data`` (or use ``df``) and :func:`fit_transform` it, or :func:`transform` it with ``saved``."""
    frame = read_table(spec) if df is None else df
    return fit_transform(frame, spec) if saved is None else transform(frame, spec, saved)


# ------------------------------------------------------------------------------------------
# fitting (training rows only)


def _fit(df, spec: Spec) -> Dict[str, Any]:
    import pandas as pd

    groups = list(dict.fromkeys(df["__series"]))
    cat_names = [c for c in spec.covariates if not pd.api.types.is_numeric_dtype(df[c])]
    val_start, test_start = _split_dates(df, spec)
    freqs = {g: infer_freq(df.loc[df["__series"] == g, "__time"].to_numpy()) for g in groups}
    per = _prepare(df, spec, groups, cat_names, freqs, val_start)
    cats = {c: _fit_categories(per, spec, j, c) for j, c in enumerate(cat_names)}
    num_names = [c for c in spec.covariates if c not in cats]
    return {"spec": spec.to_json(), "series": groups, "categories": cats,
            "scalers": _fit_scalers(per, spec, target_names(spec) + num_names),
            "val_start": str(val_start), "test_start": str(test_start), "freq": freqs}


def _split_dates(df, spec: Spec) -> Tuple[Any, Any]:
    """Validation and test start dates (one cut-off for all series, chronological)."""
    import pandas as pd

    all_times = np.sort(df["__time"].unique())
    n = len(all_times)
    test_start = (np.datetime64(pd.Timestamp(spec.test_start)) if spec.test_start
                  else all_times[int(n * (1 - spec.test_fraction))])
    val_start = (np.datetime64(pd.Timestamp(spec.val_start)) if spec.val_start
                 else all_times[int(np.searchsorted(all_times, test_start) - n * spec.val_fraction)]
                 if np.searchsorted(all_times, test_start) - n * spec.val_fraction > 0 else all_times[0])
    if not (all_times[0] < val_start < test_start):
        raise ConfigError(f"{spec.data}: split dates must satisfy first date < validation start "
                          f"({pd.Timestamp(val_start).date()}) < test start ({pd.Timestamp(test_start).date()})")
    return val_start, test_start


def _fit_categories(per: List[Dict[str, Any]], spec: Spec, j: int, name: str) -> List[str]:
    seen = set()
    for p in per:
        seen.update(v for v in p["cat"][j][p["train"]] if v is not None)
    if not seen:
        raise DataError(f"{spec.data}: categorical covariate {name!r} has no value in the training part")
    return sorted(seen)


def _fit_scalers(per: List[Dict[str, Any]], spec: Spec, names: List[str]) -> Dict[str, Any]:
    """``StandardScaler`` mean/scale of each continuous column (transformed targets, numeric
    covariates) on the training rows, per series or ``__global__``; NaN rows ignored."""
    from sklearn.preprocessing import StandardScaler

    blocks = {p["name"]: np.hstack([p["ty"], p["num"]])[p["train"]] for p in per}
    keys = [(p["name"], [blocks[p["name"]]]) for p in per] if spec.scaler == "series" else \
        [("__global__", list(blocks.values()))]
    scalers: Dict[str, Any] = {}
    for key, bl in keys:
        m = np.vstack(bl)
        if len(m) == 0:
            raise DataError(f"{spec.data}: series {key!r} has no rows before the validation start")
        where = f" of series {key!r}" if key != "__global__" and (spec.group or spec.wide) else ""
        cols_mean, cols_scale = [], []
        for j in range(m.shape[1]):
            v = m[:, j][~np.isnan(m[:, j])]
            if len(v) < 2:
                raise DataError(f"{spec.data}: column {names[j]!r} has fewer than 2 values in the training part{where}")
            sc = StandardScaler().fit(v[:, None])
            if sc.scale_[0] == 1.0 and np.ptp(v) == 0:  # sklearn sets scale 1 for constant columns
                raise DataError(f"{spec.data}: column {names[j]!r} is constant in the training part{where}")
            cols_mean.append(sc.mean_.tolist()[0])
            cols_scale.append(sc.scale_.tolist()[0])
        scalers[key] = {"mean": cols_mean, "scale": cols_scale, "columns": names}
    return scalers


# ------------------------------------------------------------------------------------------
# per-series columns (shared by fit and transform)


def _impute(col: np.ndarray, policy: str, name: str, spec: Spec, rows: np.ndarray, series: str) -> np.ndarray:
    import pandas as pd

    nan = pd.isna(col)
    if not nan.any():
        return col
    if policy == "error":
        i = int(np.flatnonzero(nan)[0])
        where = f" in series {series!r}" if (spec.group or spec.wide) else ""
        raise DataError(f"{spec.data}: column {name!r} is missing at row {rows[i]}{where}; "
                        f"choose --missing ffill or --missing interpolate")
    s = pd.Series(col)
    if policy == "interpolate" and pd.api.types.is_numeric_dtype(s):
        s = s.interpolate(limit_area="inside")
    return s.ffill().to_numpy()


def _prepare(df, spec: Spec, groups: List[str], cat_names: List[str], freqs: Dict[str, str],
             val_start) -> List[Dict[str, Any]]:
    """Per series: times, CSV rows, observed targets ``y``, transformed targets ``ty`` (inputs),
    gap segments, numeric covariates, categorical covariates (strings, None = missing), events."""
    import pandas as pd

    tcols = target_columns(spec)
    k = len(tcols)
    if spec.transform == "logret":
        for c in tcols:
            v = df[c].to_numpy()
            if (v[~np.isnan(v)] <= 0).any():
                raise DataError(f"{spec.data}: --transform logret needs positive targets; {c!r} has values <= 0")
    per = []
    for g in groups:
        part = df[df["__series"] == g]
        times = part["__time"].to_numpy()
        rows = part["__row"].to_numpy()
        freq = freqs.get(g) or infer_freq(times)
        max_gap = int(spec.max_gap) if spec.max_gap is not None else default_max_gap(freq)
        segment = np.concatenate([[0], np.cumsum(steps_between(times, freq) > max_gap)])
        y = part[tcols].to_numpy(dtype=float)
        yi = np.column_stack([_impute(y[:, j], spec.missing, (spec.targets[j] if not spec.wide else g), spec, rows, g)
                              for j in range(k)]).astype(float) if k else np.zeros((len(part), 0))
        if spec.transform == "levels":
            ty = yi
        else:
            f = np.log(yi) if spec.transform == "logret" else yi
            ty = np.vstack([np.full((1, k), np.nan), np.diff(f, axis=0)])
            ty[1:][segment[1:] != segment[:-1]] = np.nan  # no difference across a gap
        cov_num, cov_cat = [], []
        for c in spec.covariates:
            col = part[c].to_numpy()
            # a missing category is not filled in: it encodes as no category at all (all-zero
            # one-hot), e.g. no wind direction on a calm morning; --missing error still refuses it
            if c not in cat_names or spec.missing == "error":
                col = _impute(col, spec.missing, c, spec, rows, g)
            if c in cat_names:
                cov_cat.append(np.array([None if pd.isna(v) else str(v) for v in col], dtype=object))
            else:
                num = pd.to_numeric(pd.Series(col), errors="coerce").to_numpy(dtype=float)
                if (np.isnan(num) & ~pd.isna(col)).any():
                    raise DataError(f"{spec.data}: covariate {c!r} mixes numbers and text; it was numeric in training")
                cov_num.append(num)
        per.append(dict(name=g, times=times, rows=rows, y=y, ty=ty, segment=segment, freq=freq,
                        num=np.column_stack(cov_num) if cov_num else np.zeros((len(part), 0)),
                        cat=cov_cat, event=part["__event"].to_numpy(dtype=float) if spec.event else None,
                        train=times < val_start))
    return per


# ------------------------------------------------------------------------------------------
# transforming (with a fitted state)


def _one_hot(col: np.ndarray, known: List[str], name: str, rows: np.ndarray, spec: Spec, training: bool) -> np.ndarray:
    index = {v: i for i, v in enumerate(known)}
    oh = np.zeros((len(col), len(known)))
    for i, v in enumerate(col):
        if v is None:
            continue  # no category (see _prepare)
        elif v in index:
            oh[i, index[v]] = 1.0
        elif not training:  # in training, a category first seen after the split stays all-zero
            raise DataError(f"{spec.data}: covariate {name!r} has category {shown(v)} at row {rows[i]} that the "
                            f"model never saw in training (known: {', '.join(known)})")
    return oh


def _transform(df, spec: Spec, state: Dict[str, Any], training: bool) -> TSData:
    groups = list(dict.fromkeys(df["__series"]))
    known = state["series"]
    if known == ["series"] and len(groups) == 1 and not spec.group and not spec.wide:
        df["__series"] = groups[0] = "series"  # a checkpoint from before single series took their target's name
    for g in groups:
        if g not in known:
            raise DataError(f"{spec.data}: series {g!r} was never seen in training (known: {', '.join(known)})")
    cats: Dict[str, List[str]] = state["categories"]
    val_start, test_start = np.datetime64(state["val_start"]), np.datetime64(state["test_start"])
    per = _prepare(df, spec, groups, list(cats), state["freq"], val_start)
    num_names = [c for c in spec.covariates if c not in cats]
    cat_names = [c for c in spec.covariates if c in cats]
    feature_names = target_names(spec) + num_names + [f"{c}={v}" for c in cat_names for v in cats[c]]
    series: List[Series] = []
    for p in per:
        sc = state["scalers"][p["name"] if spec.scaler == "series" else "__global__"]
        cont = (np.hstack([p["ty"], p["num"]]) - np.asarray(sc["mean"])) / np.asarray(sc["scale"])
        onehots = [_one_hot(p["cat"][j], cats[c], c, p["rows"], spec, training) for j, c in enumerate(cat_names)]
        cal = calendar_features(p["times"], p["freq"]) if spec.calendar else np.zeros((len(cont), 0))
        feats = np.hstack([cont] + onehots + [cal]).astype(np.float32)
        series.append(Series(p["name"], p["times"], p["rows"], p["y"], feats, p["segment"], p["event"], p["freq"]))
    if spec.calendar and series:
        feature_names += [f"calendar{i}" for i in range(series[0].feats.shape[1] - len(feature_names))]
    if state.get("n_features") not in (None, len(feature_names)):
        raise DataError(f"{spec.data}: builds {len(feature_names)} input features, the model expects {state['n_features']}")
    out = {**state, "spec": spec.to_json(), "n_features": len(feature_names), "feature_names": feature_names,
           "target_names": target_names(spec)}
    data = TSData(spec, series, feature_names, list(range(len(target_columns(spec)))) if not spec.event else [], out)
    make_windows(data, val_start, test_start, require_train=training)
    return data
