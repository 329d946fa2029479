"""Forecast metrics in NumPy (original units; torch-free, so ONNX-backed predictors use them too)."""

from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np


def point_metrics(y: np.ndarray, yhat: np.ndarray, scale: np.ndarray) -> Dict[str, float]:
    """MAE, RMSE, MASE (``scale`` = in-sample naive MAE per element), sMAPE (%)."""
    e = yhat - y
    denom = np.abs(y) + np.abs(yhat)
    smape = np.where(denom > 0, 2 * np.abs(e) / np.where(denom > 0, denom, 1), 0.0)
    return {"mae": float(np.mean(np.abs(e))), "rmse": float(np.sqrt(np.mean(e ** 2))),
            "mase": float(np.mean(np.abs(e) / scale)), "smape": float(100 * np.mean(smape))}


def interval_metrics(y: np.ndarray, q: np.ndarray, levels: Sequence[float]) -> Dict[str, float]:
    """Coverage of the central interval (first and last level) and mean pinball loss."""
    lv = np.asarray(levels)
    e = y[..., None] - q
    pin = np.maximum(lv * e, (lv - 1) * e).mean()
    inside = (y >= q[..., 0]) & (y <= q[..., -1])
    return {"coverage": float(inside.mean()), "nominal_coverage": float(lv[-1] - lv[0]),
            "pinball": float(pin), "interval_width": float(np.mean(q[..., -1] - q[..., 0]))}


def direction_accuracy(y: np.ndarray, yhat: np.ndarray, last: np.ndarray) -> float:
    """Share of forecasts whose sign of change from the origin matches the realised one
    (ties of a forecast with no change count as wrong)."""
    return float(np.mean(np.sign(yhat - last) == np.sign(y - last)))


def event_metrics(label: np.ndarray, prob: np.ndarray) -> Dict[str, float]:
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    p = np.clip(prob, 1e-7, 1 - 1e-7)
    out = {"brier": float(brier_score_loss(label, p)), "log_loss": float(log_loss(label, p, labels=[0, 1])),
           "base_rate": float(label.mean()), "n": int(len(label))}
    out["roc_auc"] = float(roc_auc_score(label, p)) if 0 < label.sum() < len(label) else float("nan")
    return out


def reliability(label: np.ndarray, prob: np.ndarray, bins: int = 10) -> List[Dict[str, float]]:
    """Reliability-diagram table: per probability bin, mean forecast, observed frequency, count."""
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(prob, edges[1:-1]), 0, bins - 1)
    out = []
    for b in range(bins):
        m = idx == b
        if m.any():
            out.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "mean_prob": float(prob[m].mean()),
                        "observed": float(label[m].mean()), "count": int(m.sum())})
    return out
