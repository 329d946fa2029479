"""Baselines and the rolling-origin backtest of the ``forecast`` task.

Every baseline forecasts from exactly the same origins (window ends) as the model, with
the data up to the origin only:

* naive: ``y[t+k] = y[t]`` (the random walk for prices);
* seasonal naive (``season m``): ``y[t+k] = y[t+k-m*ceil(k/m)]``;
* drift: the line from the first observation of the window's segment to ``y[t]``;
* ARIMA (statsmodels): order given, or chosen by AIC over p, q in 0..2 with d from an ADF
  test, fitted once on the training part; at each origin the fitted parameters are run
  through the history up to ``t`` (Kalman filter, extended one origin at a time; no
  refit, no look-ahead). With ``--transform logret`` it models log prices;
* events: climatology (the training base rate) and logistic regression on the same lagged
  window features as the network (L2 strength chosen on the validation split).

MASE is scaled by the in-sample MAE of the (seasonal) naive forecast on each series'
training part (Hyndman & Koehler 2006): below 1 beats the naive forecast.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from ..data.timeseries import fmt_time
from . import forecast_metrics as fc

LEVELS = (0.1, 0.5, 0.9)


def interval_levels(task) -> Tuple[float, float, float]:
    """(lower, median, upper) levels reported for a model: the 80% interval, or the outermost
    levels of a quantile head (never extrapolated beyond what it was trained on)."""
    if getattr(task, "kind", None) == "quantile":
        return (min(task.quantiles[0], 0.5), 0.5, max(task.quantiles[-1], 0.5))
    return LEVELS


def truth(data, split: str) -> np.ndarray:
    """Observed targets of each window of ``split``: (N, H, K), original units."""
    H = data.spec.horizon
    return np.stack([data.series[s].y[e + 1:e + 1 + H] for s, e in data.windows[split]]) if len(data.windows[split]) \
        else np.zeros((0, H, len(data.target_index)))


def origin_values(data, split: str) -> np.ndarray:
    return np.stack([data.series[s].y[e] for s, e in data.windows[split]])  # (N, K)


def naive_scale(data, split: str, season: int = 1) -> np.ndarray:
    """In-sample MAE of the seasonal naive forecast on each series' training rows: (N, 1, K).

    With ``season == 1`` the value saved at training time is used, so a backtest on a CSV of
    recent rows only is scaled exactly like one on the full history."""
    from ..data.timeseries import naive_mae

    val_start = np.datetime64(data.state["val_start"])
    saved = data.state.get("naive_mae", {}) if season == 1 else {}
    per = []
    for ser in data.series:
        sc = saved.get(ser.name) or naive_mae(ser, val_start, season)
        per.append(np.array([np.nan if v is None else v for v in sc], dtype=float))
    return np.stack([per[s] for s, _ in data.windows[split]])[:, None, :]


def naive(data, split: str) -> np.ndarray:
    last = origin_values(data, split)
    return np.repeat(last[:, None, :], data.spec.horizon, axis=1)


def seasonal_naive(data, split: str, m: int) -> np.ndarray:
    H = data.spec.horizon
    out = []
    for s, e in data.windows[split]:
        ser = data.series[s]
        rows = []
        for k in range(1, H + 1):
            j = e + k - m * math.ceil(k / m)
            v = ser.y[j] if j >= 0 and ser.segment[j] == ser.segment[e] else np.full(ser.y.shape[1], np.nan)
            rows.append(np.where(np.isnan(v), ser.y[e], v))  # fall back to the last value
        out.append(rows)
    return np.asarray(out)


def drift(data, split: str) -> np.ndarray:
    H = data.spec.horizon
    out = []
    for s, e in data.windows[split]:
        ser = data.series[s]
        first = int(np.flatnonzero(ser.segment == ser.segment[e])[0])
        seg_y = ser.y[first:e + 1]
        slope = []
        for j in range(seg_y.shape[1]):
            ok = np.flatnonzero(~np.isnan(seg_y[:, j]))
            i0 = ok[0] if len(ok) else len(seg_y) - 1
            n = len(seg_y) - 1 - i0
            slope.append((seg_y[-1, j] - seg_y[i0, j]) / n if n > 0 else 0.0)
        out.append(ser.y[e][None, :] + np.arange(1, H + 1)[:, None] * np.asarray(slope)[None, :])
    return np.asarray(out)


def _choose_order(y: np.ndarray) -> Tuple[int, int, int]:
    from statsmodels.tsa.arima.model import ARIMA
    from statsmodels.tsa.stattools import adfuller

    clean = y[~np.isnan(y)]
    try:
        d = 1 if adfuller(clean, autolag="AIC")[1] > 0.05 else 0
    except (ValueError, np.linalg.LinAlgError):
        d = 1
    best, best_aic = (1, d, 0), np.inf
    for p in range(3):
        for q in range(3):
            try:
                r = ARIMA(y, order=(p, d, q), trend="c" if d == 0 else "n").fit()
            except (ValueError, np.linalg.LinAlgError):
                continue
            if np.isfinite(r.aic) and r.aic < best_aic:
                best, best_aic = (p, d, q), r.aic
    return best


def arima(data, split: str, order: Optional[Tuple[int, int, int]] = None) -> Tuple[np.ndarray, Dict[str, Any]]:
    """Rolling-origin ARIMA forecasts (N, H, K) and the orders used per series/target."""
    from statsmodels.tsa.arima.model import ARIMA

    H = data.spec.horizon
    log = data.spec.transform == "logret"
    val_start = np.datetime64(data.state["val_start"])
    w = data.windows[split]
    out = np.full((len(w), H, len(data.target_index)), np.nan)
    orders: Dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s, ser in enumerate(data.series):
            idx = np.flatnonzero(w[:, 0] == s)
            if len(idx) == 0:
                continue
            ends = w[idx, 1]
            for k in range(ser.y.shape[1]):
                y = np.log(ser.y[:, k]) if log else ser.y[:, k].copy()
                ytr = y[ser.times < val_start]
                if np.sum(~np.isnan(ytr)) < 20:  # e.g. a CSV of recent rows only: nothing to fit on
                    orders[f"{ser.name}/{data.state['target_names'][k]}"] = "skipped: < 20 training rows"
                    continue
                o = order or _choose_order(ytr)
                orders[f"{ser.name}/{data.state['target_names'][k]}"] = list(o)
                res = ARIMA(ytr, order=o, trend="c" if o[1] == 0 else "n").fit()
                order_sorted = np.argsort(ends, kind="stable")
                r, done = None, -1
                for j in order_sorted:
                    e = ends[j]
                    r = res.apply(y[:e + 1]) if r is None else r.extend(y[done + 1:e + 1]) if e > done else r
                    done = max(done, e)
                    f = np.asarray(r.forecast(H))
                    out[idx[j], :, k] = np.exp(f) if log else f
    return out, orders


# ------------------------------------------------------------------------------------------
# events


def event_labels(data, split: str) -> np.ndarray:
    h = data.spec.horizon
    return np.array([data.series[s].event[e + h] for s, e in data.windows[split]], dtype=float)


def _flat(data, split: str) -> np.ndarray:
    n = len(data.windows[split])
    return data.batch(np.arange(n), split)["x"].reshape(n, -1) if n else np.zeros((0, 0))


def logistic_regression(data, split: str, grid: Sequence[float] = (0.001, 0.01, 0.1, 1.0, 10.0),
                        refit: bool = False) -> Tuple[np.ndarray, Dict[str, Any]]:
    """Logistic regression on the flattened lagged window (L x C features), fitted on the
    training windows with C tuned on the validation windows (0.01 when there are none);
    ``info`` holds C and, when tuned, the validation log loss of that C. ``refit``: the chosen
    C is refitted on the training and validation windows together before predicting ``split``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    Xtr, ytr = _flat(data, "train"), event_labels(data, "train")
    info: Dict[str, Any] = {"C": 0.01}
    if len(data.windows["val"]):
        Xva, yva = _flat(data, "val"), event_labels(data, "val")
        losses = {c: log_loss(yva, LogisticRegression(C=c, max_iter=2000).fit(Xtr, ytr).predict_proba(Xva)[:, 1],
                              labels=[0, 1]) for c in grid}
        best = min(losses, key=losses.get)
        info = {"C": best, "val_log_loss": float(losses[best])}
        if refit and split != "val":
            Xtr, ytr = np.vstack([Xtr, Xva]), np.concatenate([ytr, yva])
    model = LogisticRegression(C=info["C"], max_iter=2000).fit(Xtr, ytr)
    return model.predict_proba(_flat(data, split))[:, 1], info


# ------------------------------------------------------------------------------------------
# the backtest


def backtest(pred: Dict[str, np.ndarray], levels: Sequence[float], data, split: str = "test",
             season: Optional[int] = None, arima_order: Optional[Tuple[int, int, int]] = None,
             use_arima: bool = True) -> Dict[str, Any]:
    """Model and baselines, side by side, on every origin of ``split`` (rolling origin).

    ``pred``: the model's predictions of every window of ``split`` (scaled space; see
    ``ForecastPredictor.run_windows``) at interval ``levels``."""
    w = data.windows[split]
    if len(w) == 0:
        from ..errors import DataError

        raise DataError(f"{data.spec.data}: no complete {split} window (need --lookback {data.spec.lookback} rows "
                        f"and the label(s) inside the {split} period)")
    report: Dict[str, Any] = {"split": split, "origins": int(len(w)), "horizon": data.spec.horizon,
                              "lookback": data.spec.lookback, "series": [s.name for s in data.series],
                              "from": fmt_time(min(data.series[s].times[e] for s, e in w)),
                              "levels": [float(v) for v in levels]}
    if data.spec.event:
        label = event_labels(data, split)
        base = data.state.get("event_base_rate", float(np.nanmean(event_labels(data, "train"))))
        report["models"] = {
            "model": fc.event_metrics(label, pred["prob"]),
            "climatology": fc.event_metrics(label, np.full(len(label), base)),
        }
        lr = np.full(len(label), np.nan)
        if len(data.windows["train"]) >= 20 and 0 < event_labels(data, "train").mean() < 1:
            lr, lr_info = logistic_regression(data, split)
            report["models"]["logistic_regression"] = {**fc.event_metrics(label, lr), **lr_info}
        else:
            report["notes"] = ["logistic regression skipped: the data holds no training period to fit it on"]
        report["reliability"] = fc.reliability(label, pred["prob"])
        report["predictions"] = {"prob": pred["prob"], "label": label, "lr": lr}
        return report
    y = truth(data, split)
    last = origin_values(data, split)
    scale = naive_scale(data, split, 1)
    yhat = np.stack([data.to_units(s, e, pred["mean"][i]) for i, (s, e) in enumerate(w)])
    models: Dict[str, Any] = {"model": fc.point_metrics(y, yhat, scale)}
    if "q" in pred:
        q = np.stack([data.to_units(s, e, pred["q"][i]) for i, (s, e) in enumerate(w)])
        models["model"].update(fc.interval_metrics(y, q, levels))
    forecasts = {"model": yhat, "naive": naive(data, split), "drift": drift(data, split)}
    if season and season > 1:
        forecasts[f"seasonal_naive_{season}"] = seasonal_naive(data, split, season)
    if use_arima:
        forecasts["arima"], report["arima_orders"] = arima(data, split, arima_order)
    for name, f in forecasts.items():
        if name != "model" and not np.isnan(f).all():
            models[name] = fc.point_metrics(y, f, scale)
    forecasts = {k: v for k, v in forecasts.items() if k in models}
    # direction of change from the origin: the random walk predicts none
    for name, f in forecasts.items():
        if name != "naive":
            models[name]["direction_accuracy"] = fc.direction_accuracy(y, f, last[:, None, :])
    models["naive"]["direction_accuracy"] = None
    report["always_up_accuracy"] = float(np.mean(y > last[:, None, :]))
    report["models"] = models
    report["mase_by_step"] = {name: [float(np.mean(np.abs(f[:, h] - y[:, h]) / scale[:, 0])) for h in range(y.shape[1])]
                              for name, f in forecasts.items()}
    report["beats_naive"] = bool(models["model"]["mase"] < models["naive"]["mase"])
    report["predictions"] = {"y": y, "yhat": yhat, "q": q if "q" in pred else None,
                             "baselines": {k: v for k, v in forecasts.items() if k != "model"}}
    return report
