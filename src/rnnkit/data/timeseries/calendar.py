"""Frequencies, gaps and calendar features of a time axis (NumPy datetime64 / pandas)."""

from __future__ import annotations

from typing import Any, List

import numpy as np

def infer_freq(times: np.ndarray) -> str:
    """``D``, ``B``, ``W``, ``M``, ``h`` or ``<seconds>s`` for a sorted datetime64 array."""
    if len(times) < 2:
        return "D"
    d = np.diff(times.astype("datetime64[s]").astype(np.int64))
    med = float(np.median(d))
    day = 86400.0
    if med == day:
        dow = ((times.astype("datetime64[D]").astype(np.int64) + 3) % 7)  # 0 = Monday
        if (dow < 5).all() and ((d == day).mean() < 0.95):
            return "B"
        return "D"
    if med == 7 * day:
        return "W"
    if 28 * day <= med <= 31 * day:
        return "M"
    if med == 3600.0:
        return "h"
    return f"{int(med)}s"


def steps_between(times: np.ndarray, freq: str) -> np.ndarray:
    """Steps, in periods of ``freq``, between consecutive timestamps (length n - 1)."""
    if len(times) < 2:
        return np.zeros(0, dtype=np.int64)
    if freq == "B":
        days = times.astype("datetime64[D]")
        return np.busday_count(days[:-1], days[1:]).astype(np.int64)
    if freq == "M":
        m = times.astype("datetime64[M]").astype(np.int64)
        return np.diff(m)
    sec = {"D": 86400, "W": 7 * 86400, "h": 3600}.get(freq) or int(freq[:-1])
    d = np.diff(times.astype("datetime64[s]").astype(np.int64))
    return np.rint(d / sec).astype(np.int64)


def default_max_gap(freq: str) -> int:
    return 3 if freq == "B" else 1


def future_times(last, freq: str, n: int) -> List[Any]:
    """The ``n`` timestamps after ``last`` on the series' calendar."""
    import pandas as pd

    last = pd.Timestamp(last)
    if freq == "B":
        off = pd.offsets.BDay()
    elif freq == "M":
        off = pd.offsets.MonthBegin() if last.day == 1 else pd.offsets.MonthEnd()
    elif freq == "W":
        off = pd.Timedelta(days=7)
    elif freq == "D":
        off = pd.Timedelta(days=1)
    elif freq == "h":
        off = pd.Timedelta(hours=1)
    else:
        off = pd.Timedelta(seconds=int(freq[:-1]))
    out, t = [], last
    for _ in range(n):
        t = t + off
        out.append(t)
    return out


def fmt_time(t) -> str:
    """A timestamp as ``YYYY-MM-DD`` (midnight) or ``YYYY-MM-DD HH:MM:SS``."""
    import pandas as pd

    t = pd.Timestamp(t)
    return str(t.date()) if t == t.normalize() else t.strftime("%Y-%m-%d %H:%M:%S")


def calendar_features(times, freq: str) -> np.ndarray:
    """Cyclical calendar features (sin/cos) suited to the frequency: (n, F)."""
    import pandas as pd

    t = pd.DatetimeIndex(times)
    feats = []
    if freq in ("D", "B", "W") or freq.endswith("s"):
        doy = 2 * np.pi * (t.day_of_year.to_numpy() - 1) / 365.25
        feats += [np.sin(doy), np.cos(doy)]
    if freq in ("D", "B", "h"):
        dow = 2 * np.pi * t.day_of_week.to_numpy() / 7
        feats += [np.sin(dow), np.cos(dow)]
    if freq == "M":
        mon = 2 * np.pi * (t.month.to_numpy() - 1) / 12
        feats += [np.sin(mon), np.cos(mon)]
    if freq == "h":
        hr = 2 * np.pi * t.hour.to_numpy() / 24
        feats += [np.sin(hr), np.cos(hr)]
    if not feats:
        return np.zeros((len(t), 0))
    return np.stack(feats, axis=1)
