"""Deterministic tiny time-series tables for the forecast tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def daily_frame(n: int = 200, start: str = "2020-01-01", seed: int = 0, groups=("A",), shuffle: bool = False):
    """Long-format daily table: a seasonal level, a covariate, a wind direction and a rain flag."""
    rng = np.random.default_rng(seed)
    parts = []
    for gi, g in enumerate(groups):
        t = pd.date_range(start, periods=n, freq="D")
        level = 10 + gi * 5 + 3 * np.sin(np.arange(n) * 2 * np.pi / 7) + rng.normal(0, 0.5, n).cumsum() * 0.1
        hum = 50 + 10 * rng.standard_normal(n)
        parts.append(pd.DataFrame({
            "date": t.strftime("%Y-%m-%d"), "site": g, "temp": level.round(3), "humidity": hum.round(2),
            "wind": rng.choice(["N", "S", "E", "W"], n), "rain": np.where(hum > 55, "Yes", "No"),
            "precip": np.where(hum > 55, (hum - 55).round(1), 0.0),
        }))
    df = pd.concat(parts, ignore_index=True)
    if shuffle:
        df = df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return df


def write(df, path: Path) -> Path:
    df.to_csv(path, index=False)
    return path
