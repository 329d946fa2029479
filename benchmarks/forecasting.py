"""Forecasting benchmark: rain tomorrow (weather-aus), seattle temp_max one day ahead, stocks-daily.

Correctness first (the split is chronological and leak-free; a zero head is exactly the
naive forecast; climatology's Brier equals its closed form), then quality on the held-out
test period, model next to its baselines on the same origins:

* rain tomorrow on weather-aus (last year held out, ``RainTomorrow`` with ``--horizon 0``,
  next-day ``Rainfall`` never an input): ROC-AUC / Brier / log loss of the network vs
  climatology and logistic regression (on the same lagged window, and on the last day
  only; the one with the better validation log loss is the baseline to beat);
* seattle-weather temp_max one day ahead: MASE (m = 1) of the network vs naive, drift,
  ARIMA and a ridge AR(14);
* stocks-daily (full run only): log-return model vs the random walk, with direction accuracy.

Hyper-parameters were chosen on the validation split (see docs/forecast.md), never on test.

    python benchmarks/forecasting.py --quick     # <= 60 s: rain only, one seed
    python benchmarks/forecasting.py             # full: all three, figures in docs/benchmarks.md

The last line of output is one JSON object with ``rain_auc``, ``rain_brier``,
``rain_brier_baseline`` (and more).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _common import emit, machine, write_json  # noqa: E402

RAIN = {"model": {"encoder": "lstm", "hidden_size": 32, "dropout": 0.3},
        "data": {"data": "weather-aus", "lookback": 7},
        "optim": {"lr": 1e-3, "warmup_steps": 30}}
SEATTLE = {"model": {"encoder": "gru", "hidden_size": 64},
           "data": {"data": "seattle-weather", "lookback": 28, "horizon": 1},
           "optim": {"warmup_steps": 20}}
STOCKS = {"model": {"encoder": "gru", "hidden_size": 32, "dropout": 0.2},
          "data": {"data": "stocks-daily", "lookback": 20, "horizon": 1},
          "optim": {"lr": 1e-3, "warmup_steps": 30}}


def train(setup: dict, steps: int, out: Path, seed: int = 0):
    from rnnkit.training.config import build_config
    from rnnkit.training.run import train as run

    over = {k: dict(v) for k, v in setup.items()}
    over["run"] = {"out": str(out), "max_steps": steps, "threads": 1, "progress": False, "logger": "none",
                   "val_every": steps, "checkpoint_every": steps, "seed": seed}
    cfg = build_config({}, over, task="forecast")
    return run(cfg, overwrite=True)


def load(out: Path):
    import rnnkit

    model = rnnkit.load(out)
    return model.data(), model.net.encoder, model.net.task, model


def correctness(data, enc, task) -> dict:
    import numpy as np
    import torch

    from rnnkit.tasks import forecast as fc
    from rnnkit.tasks import forecast_baselines as fb

    vs, te = np.datetime64(data.state["val_start"]), np.datetime64(data.state["test_start"])
    h = data.spec.horizon
    for s, e in data.windows["train"]:
        assert data.series[s].times[e + h] < vs
    for s, e in data.windows["test"]:
        assert data.series[s].times[e] >= te
    if data.spec.event:
        label = fb.event_labels(data, "test")
        p = float(np.mean(fb.event_labels(data, "train")))
        brier = fc.event_metrics(label, np.full(len(label), p))["brier"]
        r = label.mean()
        assert abs(brier - (r * (1 - r) + (r - p) ** 2)) < 1e-12
        return {"split_ok": True, "climatology_closed_form_ok": True}
    enc0, task0 = fc.build_for({**data.state.get("model", {}), "encoder": "gru", "hidden_size": 4, "num_layers": 1,
                                "dropout": 0.0, "head": "point", "loss": "mse"}, data)
    torch.nn.init.zeros_(task0.head.weight), torch.nn.init.zeros_(task0.head.bias)
    pred = fc.run_windows(enc0, task0, data, "test")
    yhat = np.stack([data.to_units(s, e, pred["mean"][i]) for i, (s, e) in enumerate(data.windows["test"])])
    assert np.allclose(yhat, fb.naive(data, "test"), rtol=1e-5)
    return {"split_ok": True, "zero_head_is_naive": True}


def rain(steps: int, seeds, tmp: Path) -> dict:
    import numpy as np

    from rnnkit.data import timeseries as ts
    from rnnkit.tasks import forecast as fc
    from rnnkit.tasks import forecast_baselines as fb

    probs, val_probs, t0 = [], [], time.perf_counter()
    for seed in seeds:
        train(RAIN, steps, tmp / f"rain{seed}", seed)
        data, enc, task, _ = load(tmp / f"rain{seed}")
        probs.append(fc.run_windows(enc, task, data, "test")["prob"])
        val_probs.append(fc.run_windows(enc, task, data, "val")["prob"])
    train_s = time.perf_counter() - t0
    check = correctness(data, enc, task)
    label, vlabel = fb.event_labels(data, "test"), fb.event_labels(data, "val")
    prob = np.mean(probs, axis=0)
    res = {"check": check, "origins": len(label), "test_from": data.state["test_start"][:10], "seeds": len(seeds),
           "steps": steps, "train_seconds": round(train_s, 1),
           "model": fc.event_metrics(label, prob),
           "model_val": fc.event_metrics(vlabel, np.mean(val_probs, axis=0)),
           "climatology": fc.event_metrics(label, np.full(len(label), np.mean(fb.event_labels(data, "train"))))}
    # logistic regression: the same window, and the last day only; the better one on validation is the bar
    lrs = {}
    for name, lookback in (("lr_same_window", data.spec.lookback), ("lr_last_day", 1)):
        d = data if lookback == data.spec.lookback else ts.build(ts.Spec(**{**data.state["spec"], "lookback": lookback}))
        p_test, info = fb.logistic_regression(d, "test")  # info: C and its validation log loss
        assert np.array_equal(fb.event_labels(d, "test"), label) or lookback != data.spec.lookback
        lrs[name] = {**fc.event_metrics(fb.event_labels(d, "test"), p_test), **info}
    res.update(lrs)
    res["baseline"] = min(lrs, key=lambda k: lrs[k]["val_log_loss"])
    res["reliability"] = fc.reliability(label, prob)
    res["lr_variants"] = lr_variants(data)
    return res


NUMERIC = ("MinTemp,MaxTemp,Rainfall,WindGustSpeed,WindSpeed9am,WindSpeed3pm,Humidity9am,Humidity3pm,"
           "Pressure9am,Pressure3pm,Temp9am,Temp3pm,RainToday")


def lr_variants(data) -> list:
    """Logistic regression over window length and input set, validation log loss next to the
    test scores: does what validation prefers on this data also win on the test year? The
    last row is the issue's configuration (last day, numeric inputs, refitted on all the
    years before the test year)."""
    from rnnkit.data import timeseries as ts
    from rnnkit.tasks import forecast as fc
    from rnnkit.tasks import forecast_baselines as fb

    out = []
    for inputs, cov in (("all 16", None), ("numeric 13 (no wind directions)", NUMERIC)):
        for lookback in (1, 3, 7):
            for refit in ((False, True) if (lookback, cov) == (1, NUMERIC) else (False,)):
                over = {"lookback": lookback, **({"covariates": cov.split(",")} if cov else {})}
                d = ts.build(ts.Spec(**{**data.state["spec"], **over}))
                p_test, info = fb.logistic_regression(d, "test", refit=refit)
                m = fc.event_metrics(fb.event_labels(d, "test"), p_test)
                out.append({"inputs": inputs, "lookback": lookback, "refit_train_val": refit, **info,
                            "test_roc_auc": m["roc_auc"], "test_brier": m["brier"]})
    return out


def ridge_ar(data, p: int = 14) -> "np.ndarray":
    """Ridge regression on the last p values (one step ahead), alpha chosen on validation."""
    import numpy as np
    from sklearn.linear_model import Ridge

    ser = data.series[0]
    y = ser.y[:, 0]

    def xy(split):
        ends = data.windows[split][:, 1]
        ok = ends >= p - 1
        X = np.stack([y[e - p + 1:e + 1] for e in ends[ok]])
        return X, y[ends[ok] + 1], ok

    Xtr, ytr, _ = xy("train")
    Xva, yva, _ = xy("val")
    best = min((1e-2, 1.0, 10.0, 100.0), key=lambda a: np.mean(np.abs(Ridge(alpha=a).fit(Xtr, ytr).predict(Xva) - yva)))
    Xte, _, ok = xy("test")
    assert ok.all()
    return Ridge(alpha=best).fit(Xtr, ytr).predict(Xte)[:, None, None]


def point_task(setup: dict, steps: int, tmp: Path, name: str, season=None, ridge: bool = False) -> dict:
    from rnnkit.tasks import forecast as fc
    from rnnkit.tasks import forecast_baselines as fb

    t0 = time.perf_counter()
    train(setup, steps, tmp / name)
    train_s = time.perf_counter() - t0
    data, enc, task, model = load(tmp / name)
    check = correctness(data, enc, task)
    rep = fb.backtest(model.run_windows(data, "test"), model.net.levels, data, "test", season=season)
    if ridge:
        rep["models"]["ridge_ar14"] = fc.point_metrics(rep["predictions"]["y"], ridge_ar(data),
                                                       fb.naive_scale(data, "test"))
    rep.pop("predictions")
    rep.update(check=check, steps=steps, train_seconds=round(train_s, 1))
    return rep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="<= 60 s: rain only, one seed (the full run averages three)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if args.quick:
            res = {"rain": rain(800, [0], tmp)}
        else:
            res = {"rain": rain(800, [0, 1, 2], tmp),
                   "seattle_temp_max": point_task(SEATTLE, 600, tmp, "seattle", season=7, ridge=True),
                   "stocks_daily": point_task(STOCKS, 600, tmp, "stocks")}
    r = res["rain"]
    base = r[r["baseline"]]
    summary = {"rain_auc": round(r["model"]["roc_auc"], 4), "rain_brier": round(r["model"]["brier"], 4),
               "rain_brier_baseline": round(base["brier"], 4), "rain_auc_baseline": round(base["roc_auc"], 4),
               "rain_baseline": r["baseline"], "rain_brier_climatology": round(r["climatology"]["brier"], 4)}
    if "seattle_temp_max" in res:
        sm = res["seattle_temp_max"]["models"]
        summary.update(seattle_mase=round(sm["model"]["mase"], 4), seattle_mase_naive=round(sm["naive"]["mase"], 4),
                       seattle_mase_ridge_ar14=round(sm["ridge_ar14"]["mase"], 4))
        st = res["stocks_daily"]
        summary.update(stocks_mase=round(st["models"]["model"]["mase"], 4),
                       stocks_mase_random_walk=round(st["models"]["naive"]["mase"], 4),
                       stocks_direction=round(st["models"]["model"]["direction_accuracy"], 4),
                       stocks_always_up=round(st["always_up_accuracy"], 4))
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    path = write_json("forecasting-quick" if args.quick else "forecasting", {"machine": machine(), "results": res,
                                                                           "summary": summary})
    print(f"wrote {path}")
    emit(summary)


if __name__ == "__main__":
    main()
