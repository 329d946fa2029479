"""``rnnkit forecast CKPT``: predict the next ``horizon`` steps of every series from its last
``lookback`` rows; write the predictions as CSV and plot history, forecast and interval.

The CSV is rebuilt into features with the checkpoint's saved column roles, categories,
frequencies and scalers (nothing is refitted); a series, column or category the model
never saw, or a series shorter than the lookback, is refused with one line.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ..errors import ConfigError
from .common import limited


def register(sub) -> None:
    p = sub.add_parser("forecast", help="forecast the next steps of every series (forecast checkpoints)",
                       description="Forecast the next --horizon steps after the end of each series; write a CSV "
                                   "and optionally a plot of history, forecast and prediction interval.")
    p.add_argument("checkpoint", metavar="CKPT", help="forecast checkpoint directory")
    p.add_argument("--data", default=None, help="CSV (same columns as in training) or named data set; default: the training data")
    p.add_argument("--output", metavar="FILE.csv", default=None, help="write the forecasts here (default: print them)")
    p.add_argument("--plot", metavar="FILE.png", default=None, help="plot history, forecast and interval (matplotlib)")
    p.add_argument("--series", default=None, help="only this series (default: all)")
    p.add_argument("--history", type=limited("--history", "history"), default=None, help="history rows shown in the plot (default: 4 x lookback, at least 60)")
    p.add_argument("--threads", type=limited("--threads", "threads"), default=None, help="torch CPU threads")
    p.set_defaults(func=cmd_forecast)


def load_for_inference(path: str, data: Optional[str] = None, threads: Optional[int] = None):
    """(checkpoint, TSData rebuilt with the saved state, encoder, task) for a forecast checkpoint."""
    from .. import checkpoint as ckpt_io

    ckpt = ckpt_io.load_checkpoint(Path(path), expect_task=["forecast"])
    import numpy as np
    import torch

    if threads:
        torch.set_num_threads(threads)
    from ..data import timeseries as ts
    from ..tasks import forecast as fc

    state = ckpt.config["data"]
    spec = ts.Spec(**{**state["spec"], **({"data": data} if data else {})})
    tsdata = ts.build(spec, saved=state)
    encoder, task = fc.build_for(ckpt.config["model"], tsdata)
    torch.nn.ModuleDict({"encoder": encoder, "task": task}).load_state_dict(
        {k: torch.from_numpy(np.array(v)) for k, v in ckpt.weights.items()})
    encoder.eval(), task.eval()
    return ckpt, tsdata, encoder, task


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_savefig(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix or ".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def forecast_rows(tsdata, encoder, task, series: Optional[str] = None) -> Tuple[List[Dict[str, Any]], list]:
    """One row per (series, step, target) with forecast and prediction interval, or event probability."""
    import numpy as np
    import torch

    from ..data import timeseries as ts
    from ..tasks.forecast_baselines import interval_levels

    spec = tsdata.spec
    chosen = [i for i, s in enumerate(tsdata.series) if series is None or s.name == series]
    if not chosen:
        raise ConfigError(f"--series {series!r}: no such series (have: {', '.join(s.name for s in tsdata.series)})")
    rows, plots = [], []
    for i in chosen:
        ser = tsdata.series[i]
        end = ts.last_window(ser, spec, spec.data)
        x = torch.from_numpy(ser.feats[end - spec.lookback + 1:end + 1][None].astype(np.float32))  # (1, L, C)
        with torch.no_grad():
            if getattr(task, "autoregressive", False):
                from ..tasks.forecast import rollout

                pred = rollout(encoder, task, x, tsdata, np.array([[i, end]]))
            else:
                y, _ = encoder(x)
                pred = task.predict(y, x, interval_levels(task))
        origin = ser.times[end]
        if spec.event:
            when = ts.future_times(origin, ser.freq, spec.horizon)[-1] if spec.horizon else origin
            rows.append({"series": ser.name, "origin": ts.fmt_time(origin), "time": ts.fmt_time(when),
                         "event": spec.event, "probability": float(pred["prob"][0])})
            plots.append((ser, end, None, None, float(pred["prob"][0])))
            continue
        times = ts.future_times(origin, ser.freq, spec.horizon)
        mean = tsdata.to_units(i, end, pred["mean"][0])  # (H, K)
        q = tsdata.to_units(i, end, pred["q"][0]) if "q" in pred else None  # (H, K, 3)
        for h, t in enumerate(times):
            for k, name in enumerate(tsdata.state["target_names"]):
                row = {"series": ser.name, "origin": ts.fmt_time(origin), "time": ts.fmt_time(t), "step": h + 1,
                       "target": name, "forecast": float(mean[h, k])}
                if q is not None:
                    lv = interval_levels(task)
                    row.update(lower=float(q[h, k, 0]), median=float(q[h, k, 1]), upper=float(q[h, k, 2]),
                               interval=round(lv[2] - lv[0], 6))
                rows.append(row)
        plots.append((ser, end, times, (mean, q), None))
    return rows, plots


def plot_forecasts(tsdata, plots, path: Path, history: Optional[int] = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    spec = tsdata.spec
    n = min(len(plots), 8)
    fig, axes = plt.subplots(n, 1, figsize=(9, 2.6 * n), squeeze=False)
    hist = history or max(60, 4 * spec.lookback)
    for ax, (ser, end, times, fc_, prob) in zip(axes[:, 0], plots[:n]):
        lo = max(0, end - hist + 1)
        t = ser.times[lo:end + 1]
        if spec.event:
            ax.step(t, ser.event[lo:end + 1], where="mid", color="0.4", label=f"observed {spec.event}")
            ax.scatter([ser.times[end]], [prob], color="C3", zorder=3, label=f"P(event) = {prob:.2f}")
            ax.set_ylim(-0.05, 1.05)
        else:
            mean, q = fc_
            for k, name in enumerate(tsdata.state["target_names"]):
                ax.plot(t, ser.y[lo:end + 1, k], color=f"C{k}", lw=1, label=f"{name} (history)")
                ax.plot([ser.times[end]] + list(times), np.r_[ser.y[end, k], mean[:, k]], color=f"C{k}", ls="--",
                        marker="o", ms=3, label=f"{name} forecast")
                if q is not None:
                    ax.fill_between(times, q[:, k, 0], q[:, k, 2], color=f"C{k}", alpha=0.2, label="prediction interval")
        ax.set_title(f"{ser.name}: forecast from {str(ser.times[end])[:10]}", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    atomic_savefig(fig, Path(path))
    plt.close(fig)


def cmd_forecast(args) -> int:
    import csv
    import io

    _, tsdata, encoder, task = load_for_inference(args.checkpoint, args.data, args.threads)
    rows, plots = forecast_rows(tsdata, encoder, task, args.series)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0].keys()), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    if args.output:
        atomic_write_text(Path(args.output), buf.getvalue())
        print(f"wrote {len(rows)} forecast rows to {args.output}")
    else:
        print(buf.getvalue(), end="", flush=True)
    if args.plot:
        plot_forecasts(tsdata, plots, Path(args.plot), args.history)
        print(f"wrote plot {args.plot}", file=sys.stdout if args.output else sys.stderr)
    return 0
