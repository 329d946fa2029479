"""The forecasting predictor: forecasts, backtests and plots (``rnnkit forecast``/``backtest``/``evaluate``).

A table is rebuilt into features with the checkpoint's saved column roles, categories,
frequencies and scalers (nothing is refitted: :func:`rnnkit.data.timeseries.transform` with
the saved state, the same code that built the training features); a series, column or
category the model never saw, or a series shorter than the lookback, is refused with one line. The network (:class:`~.nets.ForecastNet`) maps
windows to scaled outputs; this class maps them back to units and into tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from ..errors import ConfigError, InputError
from .base import Predictor, check_int

BATCH = 256  # windows per network call
ARIMA_MAX = 5  # p, d, q each at most this: larger orders take minutes to fit and rarely help


def arima_order(s: Optional[str]) -> Tuple[bool, Optional[Tuple[int, int, int]]]:
    """``(use_arima, order)`` from ``auto``, ``none`` or ``p,d,q``."""
    if s in (None, "auto"):
        return True, None
    if s == "none":
        return False, None
    try:
        p, d, q = (int(v) for v in str(s).split(","))
    except ValueError:
        raise ConfigError(f"--arima must be auto, none or p,d,q (e.g. 1,1,0), got {str(s)[:50]!r}") from None
    if min(p, d, q) < 0 or max(p, d, q) > ARIMA_MAX:
        raise ConfigError(f"--arima orders must each be in [0, {ARIMA_MAX}], got {s}")
    return True, (p, d, q)


class ForecastPredictor(Predictor):
    """A forecaster of the next ``horizon`` steps (or of an event's probability).

    >>> m = rnnkit.load("runs/seattle")                         # doctest: +SKIP
    >>> m.forecast()                  # from the end of the training data      # doctest: +SKIP
    >>> m.forecast(pandas.read_csv("recent.csv"), horizon=1)    # doctest: +SKIP
    """

    task = "forecast"
    headline = "mase"

    def __init__(self, config: Dict[str, Any], net: Any, path=None) -> None:
        super().__init__(config, net, path)
        self.state = config["data"]
        self.horizon = int(self.state["spec"]["horizon"])
        self.lookback = int(self.state["spec"]["lookback"])
        self.event = self.state["spec"].get("event")

    # -- data ------------------------------------------------------------------------------
    def data(self, data: Union[None, str, Path, Any] = None):
        """The checkpoint's features of ``data``: ``None`` (the training data), a CSV path or
        named set, or a pandas DataFrame with the training columns."""
        from ..data import timeseries as ts

        spec = dict(self.state["spec"])
        frame = None
        if data is None:
            pass
        elif isinstance(data, (str, Path)):
            spec["data"] = str(data)
        elif hasattr(data, "columns"):
            frame, spec["data"] = data, "the given frame"
            if len(frame) == 0:
                raise InputError("the given frame has no rows")
        else:
            raise InputError(f"data must be None, a CSV path or a pandas DataFrame, got {type(data).__name__}")
        spec = ts.Spec(**spec)
        return ts.transform(ts.read_table(spec) if frame is None else frame, spec, self.state)

    def run_windows(self, tsdata, split: str) -> Dict[str, np.ndarray]:
        """Predictions (scaled space) of every window of ``split``, in batches."""
        n = len(tsdata.windows[split])
        parts = []
        for i in range(0, n, BATCH):
            idx = np.arange(i, min(n, i + BATCH))
            x = tsdata.batch(idx, split)["x"]
            parts.append(self.net.rollout(x, tsdata, tsdata.windows[split][idx]) if self.net.autoregressive
                         else self.net.predict(x))
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}

    def _series(self, tsdata, series: Optional[str]) -> List[int]:
        chosen = [i for i, s in enumerate(tsdata.series) if series is None or s.name == series]
        if not chosen:
            raise InputError(f"series {series!r}: no such series (have: {', '.join(s.name for s in tsdata.series)})")
        return chosen

    def _last(self, tsdata, i: int) -> Tuple[int, Dict[str, np.ndarray]]:
        from ..data import timeseries as ts

        ser = tsdata.series[i]
        end = ts.last_window(ser, tsdata.spec, tsdata.spec.data)
        x = ser.feats[end - self.lookback + 1:end + 1][None].astype(np.float32)  # (1, L, C)
        pred = self.net.rollout(x, tsdata, np.array([[i, end]])) if self.net.autoregressive else self.net.predict(x)
        return end, pred

    # -- forecasting -----------------------------------------------------------------------
    def forecast_rows(self, data=None, series: Optional[str] = None, horizon: Optional[int] = None):
        """``(rows, tsdata, plots)``: one row per (series, step, target) with the forecast and its
        interval, or one per series with the event's probability; ``plots`` feed :meth:`plot`."""
        from ..data import timeseries as ts

        if horizon is not None:
            check_int("horizon", horizon, 1, max(self.horizon, 1))
        tsdata = self.data(data)
        names = tsdata.state["target_names"]
        rows, plots = [], []
        for i in self._series(tsdata, series):
            ser = tsdata.series[i]
            end, pred = self._last(tsdata, i)
            origin = ser.times[end]
            if self.event:
                when = ts.future_times(origin, ser.freq, self.horizon)[-1] if self.horizon else origin
                p = float(pred["prob"][0])
                rows.append({"series": ser.name, "origin": ts.fmt_time(origin), "time": ts.fmt_time(when),
                             "event": self.event, "probability": p})
                plots.append((ser, end, [when], None, p))
                continue
            H = horizon or self.horizon
            times = ts.future_times(origin, ser.freq, self.horizon)[:H]
            mean = tsdata.to_units(i, end, pred["mean"][0])[:H]  # (H, K)
            q = tsdata.to_units(i, end, pred["q"][0])[:H] if "q" in pred else None  # (H, K, 3)
            for h, t in enumerate(times):
                for k, name in enumerate(names):
                    row = {"series": ser.name, "origin": ts.fmt_time(origin), "time": ts.fmt_time(t), "step": h + 1,
                           "target": name, "forecast": float(mean[h, k])}
                    if q is not None:
                        lv = self.net.levels
                        row.update(lower=float(q[h, k, 0]), median=float(q[h, k, 1]), upper=float(q[h, k, 2]),
                                   interval=round(lv[2] - lv[0], 6))
                    rows.append(row)
            plots.append((ser, end, times, (mean, q), None))
        return rows, tsdata, plots

    def forecast(self, data=None, series: Optional[str] = None, horizon: Optional[int] = None):
        """The next ``horizon`` steps (default: the trained horizon; more is an error naming it)
        after the end of each series of ``data``, as a pandas DataFrame with the columns of
        ``rnnkit forecast --output``."""
        import pandas as pd

        rows, _, _ = self.forecast_rows(data, series, horizon)
        return pd.DataFrame(rows)

    def plot(self, data=None, series: Optional[str] = None, history: Optional[int] = None,
             horizon: Optional[int] = None):
        """A matplotlib Figure: history, forecast and prediction interval per series (at most 8)."""
        from .forecast_plots import plot_forecasts

        _, tsdata, plots = self.forecast_rows(data, series, horizon)
        return plot_forecasts(tsdata, plots, history, self.net.levels)

    # -- backtesting -----------------------------------------------------------------------
    def backtest_report(self, data=None, split: str = "test", season: Optional[int] = None,
                        arima: Optional[str] = "auto"):
        """``(report, tsdata)``: the report with the per-origin ``predictions`` arrays kept."""
        from ..tasks.forecast_baselines import backtest

        if split not in ("test", "val"):
            raise InputError(f"split must be 'test' or 'val', got {split!r}")
        if season is not None:
            check_int("season", season, 1, 10_000)
        use_arima, order = arima_order(arima)
        tsdata = self.data(data)
        if len(tsdata.windows[split]) == 0:
            return backtest({}, self.net.levels, tsdata, split), tsdata  # raises the one-line error
        pred = self.run_windows(tsdata, split)
        report = backtest(pred, self.net.levels, tsdata, split, season=season, arima_order=order, use_arima=use_arima)
        report["checkpoint"] = str(self.path)
        report["data"] = tsdata.spec.data
        return report, tsdata

    def backtest(self, data=None, split: str = "test", season: Optional[int] = None,
                 arima: Optional[str] = "auto") -> Dict[str, Any]:
        """Rolling-origin backtest next to the baselines: the dict of ``rnnkit backtest --json``."""
        report, _ = self.backtest_report(data, split, season, arima)
        return clean_report(report)

    def evaluate(self, data=None, split: str = "test", season: Optional[int] = None,
                 arima: Optional[str] = "auto") -> Dict[str, Any]:
        return self.backtest(data, split, season, arima)

    def describe(self, result: Dict[str, Any]) -> str:
        from .forecast_plots import backtest_table

        return backtest_table(result)


def clean_report(report: Dict[str, Any]) -> Dict[str, Any]:
    """A backtest report as JSON-ready values (no arrays; NaN -> None; 6 decimals)."""
    import math

    def clean(obj: Any) -> Any:
        if isinstance(obj, float):
            return None if math.isnan(obj) else round(obj, 6)
        if isinstance(obj, dict):
            return {k: clean(v) for k, v in obj.items() if k != "predictions"}
        if isinstance(obj, list):
            return [clean(v) for v in obj]
        return obj
    return clean(report)
