"""``rnnkit backtest CKPT``: rolling-origin backtest of a forecast checkpoint, side by side with
the naive, seasonal-naive, drift and ARIMA baselines (or climatology and logistic
regression for an event), on every origin of the test period (or ``--split val``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from ..errors import ConfigError
from .common import arima_order, limited


def _order(s: str) -> Optional[Tuple[int, int, int]]:
    if s in ("auto", "none"):
        return None
    try:
        p, d, q = (int(v) for v in s.split(","))
        if min(p, d, q) < 0:
            raise ValueError
        return p, d, q
    except ValueError:
        raise ConfigError(f"--arima must be auto, none or p,d,q (e.g. 1,1,0), got {s!r}") from None


def register(sub) -> None:
    p = sub.add_parser("backtest", help="rolling-origin backtest of a forecast checkpoint against baselines",
                       description="Rolling-origin backtest over the test period: the model next to naive, "
                                   "seasonal naive, drift and ARIMA (or climatology and logistic regression for events).")
    p.add_argument("checkpoint", metavar="CKPT", help="forecast checkpoint directory")
    p.add_argument("--data", default=None, help="CSV (same columns as in training) or named data set; default: the training data")
    p.add_argument("--split", choices=("test", "val"), default="test", help="period whose origins are scored (default: test)")
    p.add_argument("--season", type=limited("--season", "season"), default=None, help="season length m for the seasonal naive baseline")
    p.add_argument("--arima", type=arima_order, default="auto", help="ARIMA order p,d,q, auto (AIC on the training part) or none")
    p.add_argument("--plot", metavar="FILE.png", default=None, help="reliability diagram (events) or forecast-vs-actual plot")
    p.add_argument("--output", metavar="FILE.csv", default=None, help="write per-origin predictions of model and baselines")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--threads", type=limited("--threads", "threads"), default=None, help="torch CPU threads")
    p.set_defaults(func=cmd_backtest)


def _clean(obj: Any) -> Any:
    if isinstance(obj, float):
        return None if math.isnan(obj) else round(obj, 6)
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def run_backtest(checkpoint: str, data: Optional[str] = None, split: str = "test", season: Optional[int] = None,
                 arima: str = "auto", threads: Optional[int] = None) -> Tuple[Dict[str, Any], Any]:
    from ..tasks.forecast_baselines import backtest
    from .forecast import load_for_inference

    order = _order(arima)
    _, tsdata, encoder, task = load_for_inference(checkpoint, data, threads)
    report = backtest(encoder, task, tsdata, split, season=season, arima_order=order, use_arima=arima != "none")
    report["checkpoint"] = str(checkpoint)
    report["data"] = tsdata.spec.data
    return report, tsdata


def _write_predictions(report, tsdata, path: Path) -> None:
    import csv
    import io

    from ..data.timeseries import fmt_time
    from .forecast import atomic_write_text

    w = tsdata.windows[report["split"]]
    pr = report["predictions"]
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    if tsdata.spec.event:
        out.writerow(["series", "origin", "label", "model_prob", "logistic_regression_prob"])
        for i, (s, e) in enumerate(w):
            out.writerow([tsdata.series[s].name, fmt_time(tsdata.series[s].times[e]), int(pr["label"][i]),
                          f"{pr['prob'][i]:.6g}", f"{pr['lr'][i]:.6g}"])
    else:
        out.writerow(["series", "origin", "step", "target", "actual", "model"])
        for i, (s, e) in enumerate(w):
            for h in range(pr["y"].shape[1]):
                for k, name in enumerate(tsdata.state["target_names"]):
                    out.writerow([tsdata.series[s].name, fmt_time(tsdata.series[s].times[e]), h + 1, name,
                                  f"{pr['y'][i, h, k]:.6g}", f"{pr['yhat'][i, h, k]:.6g}"])
    atomic_write_text(path, buf.getvalue())


def _plot(report, tsdata, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from .forecast import atomic_savefig

    fig, ax = plt.subplots(figsize=(5.5, 5) if tsdata.spec.event else (9, 3.5))
    if tsdata.spec.event:
        rel = report["reliability"]
        ax.plot([0, 1], [0, 1], color="0.6", ls="--", label="perfectly calibrated")
        ax.plot([r["mean_prob"] for r in rel], [r["observed"] for r in rel], marker="o", label="model")
        for r in rel:
            ax.annotate(str(r["count"]), (r["mean_prob"], r["observed"]), fontsize=7, xytext=(3, -9),
                        textcoords="offset points")
        ax.set_xlabel("forecast probability")
        ax.set_ylabel("observed frequency")
        m = report["models"]["model"]
        ax.set_title(f"reliability ({report['split']}): Brier {m['brier']:.4f}, AUC {m['roc_auc']:.3f}", fontsize=9)
    else:
        w = tsdata.windows[report["split"]]
        s0 = int(w[0, 0])
        sel = np.flatnonzero(w[:, 0] == s0)
        t = tsdata.series[s0].times[w[sel, 1] + 1]
        pr = report["predictions"]
        ax.plot(t, pr["y"][sel, 0, 0], color="0.3", lw=1, label="actual")
        ax.plot(t, pr["yhat"][sel, 0, 0], color="C0", lw=1, label="model (1 step ahead)")
        if pr.get("q") is not None:
            ax.fill_between(t, pr["q"][sel, 0, 0, 0], pr["q"][sel, 0, 0, 2], color="C0", alpha=0.2, label="prediction interval")
        ax.set_title(f"{tsdata.series[s0].name}: one-step forecasts over the {report['split']} period", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)


def print_table(report: Dict[str, Any]) -> None:
    print(f"rolling-origin backtest on {report['data']} ({report['split']}: {report['origins']} origins from "
          f"{report['from']}, horizon {report['horizon']}, lookback {report['lookback']})")
    models = report["models"]
    if "brier" in models["model"]:
        print(f"{'model':<22}{'ROC-AUC':>9}{'Brier':>9}{'log loss':>10}")
        for name, m in models.items():
            auc = "n/a" if m["roc_auc"] is None or (isinstance(m["roc_auc"], float) and math.isnan(m["roc_auc"])) \
                else f"{m['roc_auc']:.4f}"
            print(f"{name:<22}{auc:>9}{m['brier']:>9.4f}{m['log_loss']:>10.4f}")
        print("reliability (forecast -> observed, count): " +
              ", ".join(f"{r['mean_prob']:.2f}->{r['observed']:.2f} ({r['count']})" for r in report["reliability"]))
        return
    print(f"{'model':<22}{'MAE':>10}{'RMSE':>10}{'MASE':>8}{'sMAPE%':>8}{'dir.acc':>9}")
    for name, m in models.items():
        d = m.get("direction_accuracy")
        print(f"{name:<22}{m['mae']:>10.4g}{m['rmse']:>10.4g}{m['mase']:>8.3f}{m['smape']:>8.2f}"
              f"{'   (none)' if d is None else f'{d:>9.3f}'}")
    m = models["model"]
    if "coverage" in m:
        print(f"model interval: {m['coverage']:.3f} of actuals inside the {m['nominal_coverage']:.0%} interval; "
              f"pinball loss {m['pinball']:.4g}")
    print(f"direction: the naive forecast (random walk) predicts no change; 'always up' scores "
          f"{report['always_up_accuracy']:.3f} on these origins")
    verdict = "beats" if report["beats_naive"] else "does NOT beat"
    print(f"verdict: the model {verdict} the naive last-value forecast on MASE "
          f"({m['mase']:.3f} vs {models['naive']['mase']:.3f})")


def cmd_backtest(args) -> int:
    report, tsdata = run_backtest(args.checkpoint, args.data, args.split, args.season, args.arima, args.threads)
    if args.output:
        _write_predictions(report, tsdata, Path(args.output))
    if args.plot:
        _plot(report, tsdata, Path(args.plot))
    report.pop("predictions")
    report = _clean(report)
    if args.json:
        print(json.dumps(report))
    else:
        print_table(report)
    return 0


def evaluate_forecast(args) -> int:
    """``rnnkit evaluate`` on a forecast checkpoint: the backtest table (ARIMA included)."""
    report, _ = run_backtest(args.checkpoint, getattr(args, "data", None), "test", None, "auto",
                             getattr(args, "threads", None))
    report.pop("predictions")
    report = _clean(report)
    if getattr(args, "json", False):
        print(json.dumps(report))
    else:
        print_table(report)
    return 0
