"""What the forecasting predictor shows a person: forecast and backtest plots, the backtest
table with its verdict, and the per-origin predictions table. matplotlib and pandas only."""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence

import numpy as np


def _figure(*args, **kwargs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def _level_label(levels: Sequence[float]) -> str:
    return f"{round(100 * (levels[2] - levels[0]))}% prediction interval"


def plot_forecasts(tsdata, plots, history: Optional[int], levels: Sequence[float]):
    """History, forecast and interval per series (at most 8 panels); the legend sits outside."""
    spec = tsdata.spec
    n = min(len(plots), 8)
    fig, axes = _figure(n, 1, figsize=(10, 2.8 * n), squeeze=False)
    hist = history or max(60, 4 * spec.lookback)
    for ax, (ser, end, times, fc_, prob) in zip(axes[:, 0], plots[:n]):
        lo = max(0, end - hist + 1)
        t = ser.times[lo:end + 1]
        if spec.event:
            ax.step(t, ser.event[lo:end + 1], where="mid", color="0.4", label=f"observed: {spec.event} (1 = yes)")
            ax.scatter(times, [prob], color="C3", zorder=3, label=f"P({spec.event}) on {str(times[0])[:10]} = {prob:.2f}")
            ax.set_ylim(-0.05, 1.05)
            ax.set_ylabel(f"P({spec.event})")
        else:
            mean, q = fc_
            for k, name in enumerate(tsdata.state["target_names"]):
                ax.plot(t, ser.y[lo:end + 1, k], color=f"C{k}", lw=1, label=f"{name}: history")
                ax.plot([ser.times[end]] + list(times), np.r_[ser.y[end, k], mean[:, k]], color=f"C{k}", ls="--",
                        marker="o", ms=3, label=f"{name}: forecast")
                if q is not None:
                    ax.fill_between(times, q[:, k, 0], q[:, k, 2], color=f"C{k}", alpha=0.2,
                                    label=f"{name}: {_level_label(levels)}")
            ax.set_ylabel(", ".join(tsdata.state["target_names"]) + " (data units)")
        ax.set_xlabel("time")
        ax.set_title(f"series {ser.name}: forecast from {str(ser.times[end])[:10]}", fontsize=9)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def plot_backtest(report: Dict[str, Any], tsdata):
    """A reliability diagram (events) or one-step forecasts against the actuals of the first series."""
    event = bool(tsdata.spec.event)
    fig, ax = _figure(figsize=(5.5, 5) if event else (10, 3.8))
    if event:
        rel = report["reliability"]
        ax.plot([0, 1], [0, 1], color="0.6", ls="--", label="perfectly calibrated")
        ax.plot([r["mean_prob"] for r in rel], [r["observed"] for r in rel], marker="o", label="model")
        for r in rel:
            ax.annotate(str(r["count"]), (r["mean_prob"], r["observed"]), fontsize=7, xytext=(3, -9),
                        textcoords="offset points")
        ax.set_xlabel(f"forecast probability of {tsdata.spec.event}")
        ax.set_ylabel("observed frequency")
        m = report["models"]["model"]
        ax.set_title(f"reliability ({report['split']}): Brier {m['brier']:.4f}, AUC {m['roc_auc']:.3f}", fontsize=9)
        ax.legend(fontsize=8, loc="upper left")
    else:
        w = tsdata.windows[report["split"]]
        s0 = int(w[0, 0])
        sel = np.flatnonzero(w[:, 0] == s0)
        t = tsdata.series[s0].times[w[sel, 1] + 1]
        pr = report["predictions"]
        target = tsdata.state["target_names"][0]
        ax.plot(t, pr["y"][sel, 0, 0], color="0.3", lw=1, label="actual")
        ax.plot(t, pr["yhat"][sel, 0, 0], color="C0", lw=1, label="model (1 step ahead)")
        if pr.get("q") is not None:
            lv = report.get("levels") or (0.1, 0.5, 0.9)
            ax.fill_between(t, pr["q"][sel, 0, 0, 0], pr["q"][sel, 0, 0, 2], color="C0", alpha=0.2,
                            label=_level_label(lv))
        ax.set_xlabel("time")
        ax.set_ylabel(f"{target} (data units)")
        ax.set_title(f"series {tsdata.series[s0].name}: one-step forecasts of {target} over the "
                     f"{report['split']} period", fontsize=9)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return fig


def backtest_frame(report: Dict[str, Any], tsdata):
    """Per-origin predictions of the model and every baseline (the rows of ``backtest --output``)."""
    import pandas as pd

    from ..data.timeseries import fmt_time, future_times

    w = tsdata.windows[report["split"]]
    pr = report["predictions"]
    rows: List[Dict[str, Any]] = []
    if tsdata.spec.event:
        h = tsdata.spec.horizon
        for i, (s, e) in enumerate(w):
            ser = tsdata.series[s]
            rows.append({"series": ser.name, "origin": fmt_time(ser.times[e]),
                         "time": fmt_time(future_times(ser.times[e], ser.freq, h)[-1] if h else ser.times[e]),
                         "label": int(pr["label"][i]), "model_prob": float(pr["prob"][i]),
                         "logistic_regression_prob": float(pr["lr"][i])})
        return pd.DataFrame(rows)
    names = tsdata.state["target_names"]
    base = pr.get("baselines", {})
    for i, (s, e) in enumerate(w):
        ser = tsdata.series[s]
        times = future_times(ser.times[e], ser.freq, pr["y"].shape[1])
        for h in range(pr["y"].shape[1]):
            for k, name in enumerate(names):
                row = {"series": ser.name, "origin": fmt_time(ser.times[e]), "time": fmt_time(times[h]),
                       "step": h + 1, "target": name, "actual": float(pr["y"][i, h, k]),
                       "model": float(pr["yhat"][i, h, k])}
                row.update({b: float(f[i, h, k]) for b, f in base.items()})
                rows.append(row)
    return pd.DataFrame(rows)


def _auc(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def verdict(report: Dict[str, Any]) -> str:
    """One line: the model against the best baseline on the headline metric (lower is better)."""
    models = report["models"]
    key = "brier" if "brier" in models["model"] else "mase"
    rivals = {n: m[key] for n, m in models.items() if n != "model" and m.get(key) is not None}
    if not rivals:
        return "verdict: no baseline could be scored on these origins"
    best = min(rivals, key=rivals.get)
    m, b = models["model"][key], rivals[best]
    what = "beats" if m < b else "ties with" if m == b else "LOSES to"
    return (f"verdict: the model {what} the best baseline, {best}, on {key.upper() if key == 'mase' else 'Brier score'} "
            f"({m:.4f} vs {b:.4f}; lower is better)")


def backtest_table(report: Dict[str, Any]) -> str:
    lines = [f"rolling-origin backtest on {report['data']} ({report['split']}: {report['origins']} origins from "
             f"{report['from']}, horizon {report['horizon']}, lookback {report['lookback']})"]
    models = report["models"]
    if "brier" in models["model"]:
        lines.append(f"{'model':<22}{'ROC-AUC':>9}{'Brier':>9}{'log loss':>10}")
        for name, m in models.items():
            lines.append(f"{name:<22}{_auc(m['roc_auc']):>9}{m['brier']:>9.4f}{m['log_loss']:>10.4f}")
        lines.append("reliability (forecast -> observed, count): " +
                     ", ".join(f"{r['mean_prob']:.2f}->{r['observed']:.2f} ({r['count']})" for r in report["reliability"]))
        lines.append(verdict(report))
        return "\n".join(lines)
    lines.append(f"{'model':<22}{'MAE':>10}{'RMSE':>10}{'MASE':>8}{'sMAPE%':>8}{'dir.acc':>9}")
    for name, m in models.items():
        d = m.get("direction_accuracy")
        lines.append(f"{name:<22}{m['mae']:>10.4g}{m['rmse']:>10.4g}{m['mase']:>8.3f}{m['smape']:>8.2f}"
                     f"{'   (none)' if d is None else f'{d:>9.3f}'}")
    m = models["model"]
    if "coverage" in m:
        lines.append(f"model interval: {m['coverage']:.3f} of actuals inside the {m['nominal_coverage']:.0%} interval; "
                     f"pinball loss {m['pinball']:.4g}")
    lines.append(f"direction: the naive forecast (random walk) predicts no change; 'always up' scores "
                 f"{report['always_up_accuracy']:.3f} on these origins")
    lines.append(verdict(report))
    return "\n".join(lines)
