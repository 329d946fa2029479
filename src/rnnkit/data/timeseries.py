"""Time-series tables for forecasting: CSV -> sorted, checked series -> scaled features -> windows.

The honesty rules, enforced here and nowhere else:

* rows are sorted by time within each series; duplicate timestamps are refused;
* the split is chronological (one cut-off date for all series, so no series leaks the
  future of another): training windows end with their *targets* before ``val_start``;
  validation and test windows have their forecast origin inside their period;
* scalers (scikit-learn ``StandardScaler``) and category lists are fitted on the training
  rows only and stored as plain numbers / strings in the checkpoint's data config;
* a window never crosses two series or a gap longer than ``max_gap`` periods;
* labels are always the *observed* values: imputed values (``--missing ffill|interpolate``)
  only ever feed inputs, and a window whose label is missing is dropped;
* an event label of the window ending at ``t`` is the event at ``t + horizon``; inputs are
  rows ``<= t`` only, so the future value of the event's source column never enters.

Frequencies: ``D`` (daily), ``B`` (business days: a trading calendar is regular, and steps
are counted in weekdays, so a market holiday is a step of 2, within the default
``max_gap`` of 3 for ``B``), ``W``, ``M`` (monthly, steps counted in calendar months),
``h`` (hourly), or the median spacing for anything else.

Transforms of the targets (``levels``, ``diff``, ``logret``): inputs are the transformed
series; the model's output for step ``k`` is ``f(y[t+k])`` (levels) or the cumulative change
``f(y[t+k]) - f(y[t])`` (diff: ``f`` = identity, logret: ``f`` = log), divided by the
training scale; :meth:`TSData.to_units` maps any output (mean or quantile) back to the
original units, monotonically, so intervals map too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..errors import ConfigError, DataError

# ------------------------------------------------------------------------------------------
# named datasets: the defaults a bare `--data NAME` uses (any field may be overridden)

PRESETS: Dict[str, Dict[str, Any]] = {
    "seattle-weather": {  # vega_datasets, daily 2012-2015
        "source": "vega:seattle-weather", "time": "date", "target": "temp_max",
        "covariates": "precipitation,temp_min,wind,weather",
    },
    "stocks": {  # vega_datasets, monthly closes 2000-2010, long format
        "source": "vega:stocks", "time": "date", "target": "price", "group": "symbol",
        "transform": "logret",
    },
    "weather-aus": {  # ../shared/datasets, daily Albury weather
        "source": "shared:weather-aus/weatherAUS-albury.csv", "time": "Date", "event": "RainTomorrow",
        "horizon": 0, "missing": "ffill",
        "covariates": ("MinTemp,MaxTemp,Rainfall,WindGustDir,WindGustSpeed,WindDir9am,WindDir3pm,"
                       "WindSpeed9am,WindSpeed3pm,Humidity9am,Humidity3pm,Pressure9am,Pressure3pm,"
                       "Temp9am,Temp3pm,RainToday"),
        "test_start": "2016-06-26",  # the last year held out
    },
    "stocks-daily": {  # ../shared/datasets, daily closes 2007-2016, wide format
        "source": "shared:stocks-daily/stockdata.csv", "time": "Date", "target": "MSFT,IBM,SBUX,AAPL,GSPC",
        "wide": True, "transform": "logret",
    },
    "vix-daily": {
        "source": "shared:vix-daily/vix-daily.csv", "time": "DATE", "target": "CLOSE", "transform": "logret",
    },
}

YES = {"yes", "y", "true", "t", "1", "1.0"}
NO = {"no", "n", "false", "f", "0", "0.0"}
_THRESHOLD = re.compile(r"^\s*([^<>=!]+?)\s*(>=|<=|==|!=|>|<)\s*(-?[0-9.eE+-]+)\s*$")


def split_list(s: Optional[str]) -> List[str]:
    return [c.strip() for c in (s or "").split(",") if c.strip()]


@dataclass
class Spec:
    """The resolved column roles and options of a forecasting data set (saved in checkpoints)."""

    data: str
    time: str
    targets: List[str]
    covariates: List[str]
    group: Optional[str] = None
    wide: bool = False
    event: Optional[str] = None
    horizon: int = 1
    lookback: int = 28
    transform: str = "levels"
    missing: str = "error"
    max_gap: Optional[int] = None
    scaler: str = "series"
    calendar: bool = True
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    val_start: Optional[str] = None
    test_start: Optional[str] = None

    def to_json(self) -> Dict[str, Any]:
        return dict(self.__dict__)


def preset_defaults(d: Dict[str, Any]) -> Dict[str, Any]:
    """The named data set's defaults that still apply next to the fields given in ``d``.

    A given field overrides the preset's value, and takes the preset's related choices with
    it, so that only two *given* fields can contradict each other: a given ``--target`` or
    ``--event`` replaces the preset's target role (its target, event, wide format and the
    horizon that went with it), a given ``--group`` its wide format (and ``--wide`` its
    group), and the preset's covariates lose the columns given another role.
    """
    preset = dict(PRESETS.get(d.get("data") or "", {}))
    given = {k for k, v in d.items() if v is not None}
    if given & {"target", "event"}:
        for key in ("target", "event", "wide", "horizon"):
            if key not in given:
                preset.pop(key, None)
    if "group" in given and "wide" not in given:
        preset.pop("wide", None)
    if d.get("wide") and "group" not in given:
        preset.pop("group", None)
    if "covariates" not in given and preset.get("covariates"):
        taken = set(split_list(d.get("target"))) | {d.get("time"), d.get("group")}
        if d.get("event") and parse_event(d["event"])[1] is None:
            taken.add(d["event"].strip())  # a yes/no column; a threshold's column stays an input
        preset["covariates"] = ",".join(c for c in split_list(preset["covariates"]) if c not in taken)
    return preset


def resolve_spec(d: Dict[str, Any]) -> Spec:
    """A :class:`Spec` from a data-config dict (``None`` fields take the named data set's preset)."""
    preset = preset_defaults(d)

    def pick(key, default=None):
        v = d.get(key)
        return preset.get(key, default) if v is None else v

    data = d.get("data")
    if not data:
        raise ConfigError("--data is required: a CSV path or one of " + ", ".join(PRESETS))
    time = pick("time")
    if not time:
        raise ConfigError(f"{data}: --time COL is required (the timestamp column)")
    event = pick("event")
    targets = split_list(pick("target"))
    covs = split_list(pick("covariates"))
    spec = Spec(data=data, time=time, targets=targets, covariates=covs, group=pick("group"),
                wide=bool(pick("wide", False)), event=event, horizon=int(pick("horizon", 1)),
                lookback=int(pick("lookback", 28)), transform=pick("transform", "levels"),
                missing=pick("missing", "error"), max_gap=pick("max_gap"), scaler=pick("scaler", "series"),
                calendar=bool(pick("calendar", True)), val_fraction=float(pick("val_fraction", 0.15)),
                test_fraction=float(pick("test_fraction", 0.15)), val_start=pick("val_start"),
                test_start=pick("test_start"))
    check_spec(spec)
    return spec


def check_spec(s: Spec) -> None:
    if s.horizon < 0:
        raise ConfigError(f"--horizon must be >= 0, got {s.horizon}")
    if s.lookback <= 0:
        raise ConfigError(f"--lookback must be >= 1, got {s.lookback}")
    if s.event is None:
        if not s.targets:
            raise ConfigError(f"{s.data}: give --target COL[,COL...] (or --event for a yes/no target)")
        if s.horizon == 0:
            raise ConfigError("--horizon 0 is only for an --event column that already looks ahead (like RainTomorrow)")
    elif s.targets:
        raise ConfigError("--event and --target exclude each other; list input columns in --covariates")
    for t in s.targets:
        if t in s.covariates:
            raise ConfigError(f"column {t!r} is both a --target and a --covariate")
    if s.time in s.targets or s.time in s.covariates:
        raise ConfigError(f"the time column {s.time!r} cannot be a target or covariate")
    if s.group and (s.group in s.targets or s.group in s.covariates):
        raise ConfigError(f"the group column {s.group!r} cannot be a target or covariate")
    if s.wide and s.group:
        raise ConfigError("--wide (one column per series) and --group (long format) exclude each other")
    if s.wide and s.event:
        raise ConfigError("--wide needs --target columns, not --event")
    if s.transform not in ("levels", "diff", "logret"):
        raise ConfigError(f"--transform must be levels, diff or logret, got {s.transform!r}")
    if s.missing not in ("error", "ffill", "interpolate"):
        raise ConfigError(f"--missing must be error, ffill or interpolate, got {s.missing!r}")
    if s.scaler not in ("series", "global"):
        raise ConfigError(f"--scaler must be series or global, got {s.scaler!r}")
    if s.max_gap is not None and int(s.max_gap) < 1:
        raise ConfigError(f"--max-gap must be >= 1, got {s.max_gap}")
    if not (0 < s.val_fraction < 1 and 0 < s.test_fraction < 1 and s.val_fraction + s.test_fraction < 1):
        raise ConfigError("--val-fraction and --test-fraction must lie in (0, 1) and sum to less than 1")
    if s.event:
        col, _, _ = parse_event(s.event)
        if col in s.covariates and s.horizon == 0:
            raise ConfigError(f"--event {s.event!r} with --horizon 0 would read its own label from covariate "
                              f"{col!r}; use --horizon >= 1 (or a column that already looks ahead)")
        if col == s.event and col in s.covariates:
            raise ConfigError(f"the event column {col!r} cannot also be a covariate")


def parse_event(event: str) -> Tuple[str, Optional[str], Optional[float]]:
    """``'precipitation>0'`` -> ``('precipitation', '>', 0.0)``; ``'RainTomorrow'`` -> ``(col, None, None)``."""
    m = _THRESHOLD.match(event)
    if m:
        try:
            return m.group(1).strip(), m.group(2), float(m.group(3))
        except ValueError:
            raise ConfigError(f"--event {event!r}: cannot read the threshold") from None
    return event.strip(), None, None


# ------------------------------------------------------------------------------------------
# reading


def read_table(spec: Spec):
    """The raw table as a pandas DataFrame (named data set or CSV path), ``NA`` tokens as missing."""
    import pandas as pd

    preset = PRESETS.get(spec.data)
    if preset is not None:
        src = preset["source"]
        if src.startswith("vega:"):
            from vega_datasets import local_data  # never `data`: it may go to the network

            return getattr(local_data, src[5:].replace("-", "_"))()
        from .datasets import find_dataset_dir

        name, fname = src[7:].split("/", 1)
        folder = find_dataset_dir(name)
        if folder is None:
            raise DataError(f"{spec.data}: dataset folder {name!r} not found (set RNNKIT_DATA_DIR or put it in ../shared/datasets)")
        path = folder / fname
    else:
        path = Path(spec.data).expanduser()
        if not path.is_file():
            raise DataError(f"{path}: no such CSV file (or named data set: {', '.join(PRESETS)})")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise DataError(f"{path}: cannot read as CSV ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


def _parse_times(df, spec: Spec):
    import pandas as pd

    col = df[spec.time]
    if pd.api.types.is_datetime64_any_dtype(col):
        return col
    try:
        t = pd.to_datetime(col, format="mixed")
    except (ValueError, TypeError, OverflowError):
        t = None
    if t is None or t.isna().any():
        bad = None
        for i, v in enumerate(col):
            try:
                if pd.isna(pd.to_datetime(v)):
                    bad = (i, v)
                    break
            except (ValueError, TypeError, OverflowError):
                bad = (i, v)
                break
        i, v = bad if bad else (0, col.iloc[0])
        raise DataError(f"{spec.data}: column {spec.time!r}: cannot parse {v!r} as a date (row {i + 2})")
    return t


def _event_labels(df, spec: Spec) -> np.ndarray:
    col, op, thr = parse_event(spec.event)
    if col not in df.columns:
        raise DataError(f"{spec.data}: --event column {col!r} not found (columns: {', '.join(map(str, df.columns))})")
    v = df[col]
    if op is None:
        out = np.full(len(v), np.nan)
        for i, x in enumerate(v):
            if x is None or (isinstance(x, float) and np.isnan(x)):
                continue
            s = str(x).strip().lower()
            if s in YES:
                out[i] = 1.0
            elif s in NO:
                out[i] = 0.0
            else:
                raise DataError(f"{spec.data}: --event column {col!r} holds {x!r} at row {i + 2}; expected yes/no or 0/1 "
                                f"(or give a threshold such as '{col}>0')")
        return out
    import pandas as pd

    num = pd.to_numeric(v, errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(np.isnan(num) & v.notna().to_numpy())
    if len(bad):
        raise DataError(f"{spec.data}: --event column {col!r} is not numeric ({v.iloc[bad[0]]!r} at row {bad[0] + 2})")
    ops = {">": np.greater, "<": np.less, ">=": np.greater_equal, "<=": np.less_equal,
           "==": np.equal, "!=": np.not_equal}
    with np.errstate(invalid="ignore"):
        lab = ops[op](num, thr).astype(float)
    lab[np.isnan(num)] = np.nan
    return lab


def tidy_frame(df, spec: Spec):
    """Check columns and types, reshape wide to long, attach ``__series``/``__time``/``__row``/``__event``,
    sort by time within series and refuse duplicates. Returns the tidy frame."""
    import pandas as pd

    df = df.copy()
    df.columns = [str(c) for c in df.columns]
    need = [spec.time] + spec.targets + spec.covariates + ([spec.group] if spec.group else [])
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise DataError(f"{spec.data}: column {missing[0]!r} not found (columns: {', '.join(df.columns)})")
    if len(df) == 0:
        raise DataError(f"{spec.data}: no rows")
    df["__row"] = np.arange(len(df)) + 2  # the CSV line (header is line 1)
    df["__time"] = _parse_times(df, spec).to_numpy()
    for c in spec.targets:
        if not pd.api.types.is_numeric_dtype(df[c]):
            num = pd.to_numeric(df[c], errors="coerce")
            bad = np.flatnonzero(num.isna().to_numpy() & df[c].notna().to_numpy())
            if len(bad):
                raise DataError(f"{spec.data}: target column {c!r} is not numeric ({df[c].iloc[bad[0]]!r} at row {bad[0] + 2})")
            df[c] = num
        df[c] = df[c].astype(float)
    for c in need[1:]:
        if c in df.columns and pd.api.types.is_numeric_dtype(df[c]):
            inf = np.flatnonzero(np.isinf(df[c].to_numpy(dtype=float)))
            if len(inf):
                raise DataError(f"{spec.data}: column {c!r} holds an infinite value at row {inf[0] + 2}")
        if c != spec.group and df[c].isna().all():
            raise DataError(f"{spec.data}: column {c!r} is entirely missing (all NaN)")
    if spec.event:
        df["__event"] = _event_labels(df, spec)
        if np.isnan(df["__event"]).all():
            raise DataError(f"{spec.data}: --event column {parse_event(spec.event)[0]!r} is entirely missing")
    if spec.wide:
        keep = ["__row", "__time"] + spec.covariates
        parts = []
        for t in spec.targets:
            p = df[keep].copy()
            p["__series"] = t
            p["__y"] = df[t].to_numpy()
            parts.append(p)
        df = pd.concat(parts, ignore_index=True)
    else:
        df["__series"] = df[spec.group].astype(str) if spec.group else "series"
    df = df.sort_values(["__series", "__time"], kind="stable").reset_index(drop=True)
    dup = df.duplicated(["__series", "__time"], keep=False).to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        where = f" in series {df['__series'].iloc[i]!r}" if (spec.group or spec.wide) else ""
        raise DataError(f"{spec.data}: duplicate timestamp {pd.Timestamp(df['__time'].iloc[i]).date()}{where} "
                        f"(rows {', '.join(str(r) for r in df['__row'][dup & (df['__time'] == df['__time'].iloc[i]).to_numpy()][:2])})")
    return df


def target_columns(spec: Spec) -> List[str]:
    """Columns of the tidy frame that hold the targets (``__y`` in wide format)."""
    return ["__y"] if spec.wide else list(spec.targets)


def target_names(spec: Spec) -> List[str]:
    return ["value"] if spec.wide else list(spec.targets)


# ------------------------------------------------------------------------------------------
# frequency and gaps


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


# ------------------------------------------------------------------------------------------
# the prepared data set


@dataclass
class Series:
    name: str
    times: np.ndarray  # (n,) datetime64
    rows: np.ndarray  # (n,) CSV line numbers
    y: np.ndarray  # (n, K) observed targets in original units (NaN where missing)
    feats: np.ndarray  # (n, C) float32 scaled model inputs (NaN in a row: the row is unusable)
    segment: np.ndarray  # (n,) contiguous-run id (cut at gaps)
    event: Optional[np.ndarray] = None  # (n,) 0/1/NaN
    freq: str = "D"


@dataclass
class TSData:
    spec: Spec
    series: List[Series]
    feature_names: List[str]
    target_index: List[int]  # columns of feats holding the (transformed) targets
    state: Dict[str, Any]  # scalers, categories, split dates, frequencies: the saved data config
    windows: Dict[str, np.ndarray] = field(default_factory=dict)  # split -> (N, 2) [series, end row]
    dropped: Dict[str, int] = field(default_factory=dict)

    # -- scaling of targets -----------------------------------------------------------------
    def target_scale(self, s: int) -> Tuple[np.ndarray, np.ndarray]:
        """(mean, scale) of the transformed targets of series ``s``: (K,), (K,)."""
        sc = self.state["scalers"]
        key = self.series[s].name if self.spec.scaler == "series" else "__global__"
        k = len(self.target_index)
        return np.asarray(sc[key]["mean"][:k]), np.asarray(sc[key]["scale"][:k])

    def output_targets(self, s: int, end: int, horizon: int) -> np.ndarray:
        """The scaled training targets of a window ending at row ``end``: (H, K)."""
        ser = self.series[s]
        mean, scale = self.target_scale(s)
        fut = ser.y[end + 1:end + 1 + horizon]  # (H, K)
        tr = self.spec.transform
        if tr == "levels":
            return (fut - mean) / scale
        f = np.log if tr == "logret" else (lambda v: v)
        return (f(fut) - f(ser.y[end])) / scale

    def to_units(self, s: int, end: int, out: np.ndarray) -> np.ndarray:
        """Model outputs (..., H, K) in scaled transformed space -> original units."""
        mean, scale = self.target_scale(s)
        tr = self.spec.transform
        last = self.series[s].y[end]
        if tr == "levels":
            return out * scale + mean
        if tr == "diff":
            return last + out * scale
        return last * np.exp(out * scale)

    def x(self, s: int, end: int) -> np.ndarray:
        """Inputs of the window ending at row ``end``: (L, C)."""
        L = self.spec.lookback
        return self.series[s].feats[end - L + 1:end + 1]

    def batch(self, idx: np.ndarray, split: str) -> Dict[str, Any]:
        w = self.windows[split][idx]
        x = np.stack([self.x(s, e) for s, e in w]).astype(np.float32)  # (B, L, C)
        out = {"x": x}
        if self.spec.event:
            h = self.spec.horizon
            out["event"] = np.array([self.series[s].event[e + h] for s, e in w], dtype=np.float32)  # (B,)
        else:
            out["y"] = np.stack([self.output_targets(s, e, self.spec.horizon) for s, e in w]).astype(np.float32)
        return out


def _fit_scaler(values: np.ndarray) -> Tuple[List[float], List[float]]:
    from sklearn.preprocessing import StandardScaler

    sc = StandardScaler().fit(values)
    return sc.mean_.tolist(), sc.scale_.tolist()


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


def build(spec: Spec, df=None, saved: Optional[Dict[str, Any]] = None) -> TSData:
    """Read, check, split, scale and window. ``saved``: the checkpoint's data config (reuse its
    scalers, categories, split dates; refuse series/columns/categories it never saw)."""
    import pandas as pd

    raw = read_table(spec) if df is None else df
    df = tidy_frame(raw, spec)
    tcols = target_columns(spec)
    k = len(tcols)
    if spec.transform == "logret":
        for c in tcols:
            v = df[c].to_numpy()
            if (v[~np.isnan(v)] <= 0).any():
                raise DataError(f"{spec.data}: --transform logret needs positive targets; {c!r} has values <= 0")
    groups = list(dict.fromkeys(df["__series"]))
    if saved is not None:
        known = saved["series"]
        for g in groups:
            if g not in known:
                raise DataError(f"{spec.data}: series {g!r} was never seen in training (known: {', '.join(known)})")

    # categorical vs numeric covariates: types from training, or from the saved config
    if saved is not None:
        cats: Dict[str, List[str]] = saved["categories"]
    else:
        cats = {}
        for c in spec.covariates:
            if not pd.api.types.is_numeric_dtype(df[c]):
                cats[c] = []
    # split dates (global, chronological)
    all_times = np.sort(df["__time"].unique())
    if saved is not None:
        val_start = np.datetime64(saved["val_start"])
        test_start = np.datetime64(saved["test_start"])
    else:
        n = len(all_times)
        test_start = (np.datetime64(pd.Timestamp(spec.test_start)) if spec.test_start
                      else all_times[int(n * (1 - spec.test_fraction))])
        val_start = (np.datetime64(pd.Timestamp(spec.val_start)) if spec.val_start
                     else all_times[int(np.searchsorted(all_times, test_start) - n * spec.val_fraction)]
                     if np.searchsorted(all_times, test_start) - n * spec.val_fraction > 0 else all_times[0])
        if not (all_times[0] < val_start < test_start):
            raise ConfigError(f"{spec.data}: split dates must satisfy first date < validation start "
                              f"({pd.Timestamp(val_start).date()}) < test start ({pd.Timestamp(test_start).date()})")

    per: List[Dict[str, Any]] = []
    for g in groups:
        part = df[df["__series"] == g]
        times = part["__time"].to_numpy()
        rows = part["__row"].to_numpy()
        freq = infer_freq(times) if saved is None else saved["freq"].get(g, infer_freq(times))
        steps = steps_between(times, freq)
        max_gap = int(spec.max_gap) if spec.max_gap is not None else default_max_gap(freq)
        segment = np.concatenate([[0], np.cumsum(steps > max_gap)])
        y = part[tcols].to_numpy(dtype=float)
        # transformed targets (inputs)
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
            if c not in cats or spec.missing == "error":
                col = _impute(col, spec.missing, c, spec, rows, g)
            if c in cats:
                cov_cat.append(np.array([None if pd.isna(v) else str(v) for v in col], dtype=object))
            else:
                num = pd.to_numeric(pd.Series(col), errors="coerce").to_numpy(dtype=float)
                if (np.isnan(num) & ~pd.isna(col)).any():
                    raise DataError(f"{spec.data}: covariate {c!r} mixes numbers and text; it was numeric in training")
                cov_num.append(num)
        ev = part["__event"].to_numpy(dtype=float) if spec.event else None
        per.append(dict(name=g, times=times, rows=rows, y=y, ty=ty, segment=segment, freq=freq,
                        num=np.column_stack(cov_num) if cov_num else np.zeros((len(part), 0)),
                        cat=cov_cat, event=ev, train=times < val_start))

    num_names = [c for c in spec.covariates if c not in cats]
    cat_names = [c for c in spec.covariates if c in cats]
    # categories and scalers from the training rows only
    if saved is None:
        for j, c in enumerate(cat_names):
            seen = set()
            for p in per:
                seen.update(v for v in p["cat"][j][p["train"]] if v is not None)
            if not seen:
                raise DataError(f"{spec.data}: categorical covariate {c!r} has no value in the training part")
            cats[c] = sorted(seen)
        scalers: Dict[str, Any] = {}
        blocks = {p["name"]: np.hstack([p["ty"], p["num"]])[p["train"]] for p in per}
        names = target_names(spec) + num_names
        keys = [(p["name"], [blocks[p["name"]]]) for p in per] if spec.scaler == "series" else \
            [("__global__", list(blocks.values()))]
        for key, bl in keys:
            m = np.vstack(bl)
            if len(m) == 0:
                raise DataError(f"{spec.data}: series {key!r} has no rows before the validation start")
            cols_mean, cols_scale = [], []
            for j in range(m.shape[1]):
                v = m[:, j][~np.isnan(m[:, j])]
                if len(v) < 2:
                    raise DataError(f"{spec.data}: column {names[j]!r} has fewer than 2 values in the training part"
                                    + (f" of series {key!r}" if key != "__global__" and (spec.group or spec.wide) else ""))
                mu, sd = _fit_scaler(v[:, None])
                if sd[0] == 1.0 and np.ptp(v) == 0:  # sklearn sets scale 1 for constant columns
                    raise DataError(f"{spec.data}: column {names[j]!r} is constant in the training part"
                                    + (f" of series {key!r}" if key != "__global__" and (spec.group or spec.wide) else ""))
                cols_mean.append(mu[0])
                cols_scale.append(sd[0])
            scalers[key] = {"mean": cols_mean, "scale": cols_scale, "columns": names}
    else:
        scalers = saved["scalers"]

    feature_names = target_names(spec) + num_names + [f"{c}={v}" for c in cat_names for v in cats[c]]
    series: List[Series] = []
    freqs = {}
    for p in per:
        key = p["name"] if spec.scaler == "series" else "__global__"
        mu = np.asarray(scalers[key]["mean"])
        sd = np.asarray(scalers[key]["scale"])
        cont = (np.hstack([p["ty"], p["num"]]) - mu) / sd
        onehots = []
        for j, c in enumerate(cat_names):
            col = p["cat"][j]
            index = {v: i for i, v in enumerate(cats[c])}
            oh = np.zeros((len(col), len(cats[c])))
            for i, v in enumerate(col):
                if v is None:
                    continue  # no category (see above)
                elif v in index:
                    oh[i, index[v]] = 1.0
                elif saved is not None:  # in training, a category first seen after the split stays all-zero
                    raise DataError(f"{spec.data}: covariate {c!r} has category {v!r} at row {p['rows'][i]} that the "
                                    f"model never saw in training (known: {', '.join(cats[c])})")
            onehots.append(oh)
        cal = calendar_features(p["times"], p["freq"]) if spec.calendar else np.zeros((len(cont), 0))
        feats = np.hstack([cont] + onehots + [cal]).astype(np.float32)
        series.append(Series(p["name"], p["times"], p["rows"], p["y"], feats, p["segment"], p["event"], p["freq"]))
        freqs[p["name"]] = p["freq"]
    if spec.calendar and series:
        feature_names += [f"calendar{i}" for i in range(series[0].feats.shape[1] - len(feature_names))]
    if saved is not None and saved.get("n_features") not in (None, len(feature_names)):
        raise DataError(f"{spec.data}: builds {len(feature_names)} input features, the model expects {saved['n_features']}")

    state = {"spec": spec.to_json(), "series": [p["name"] for p in per] if saved is None else saved["series"],
             "categories": cats, "scalers": scalers, "val_start": str(val_start), "test_start": str(test_start),
             "freq": freqs if saved is None else {**saved["freq"], **freqs}, "n_features": len(feature_names),
             "feature_names": feature_names, "target_names": target_names(spec)}
    data = TSData(spec, series, feature_names, list(range(len(tcols))) if not spec.event else [], state)
    make_windows(data, np.datetime64(val_start), np.datetime64(test_start), require_train=saved is None)
    if saved is None:  # training-part statistics the backtest needs even on a CSV of recent rows only
        w = data.windows["train"]
        if spec.event:
            state["event_base_rate"] = float(np.mean([series[s].event[e + spec.horizon] for s, e in w]))
        else:
            state["naive_mae"] = {ser.name: naive_mae(ser, np.datetime64(val_start)) for ser in series}
    else:
        for key in ("event_base_rate", "naive_mae"):
            if key in saved:
                state[key] = saved[key]
    return data


def naive_mae(ser: Series, val_start, season: int = 1) -> List[Optional[float]]:
    """In-sample MAE of the (seasonal) naive forecast on the training rows, per target (MASE scale)."""
    tr = ser.times < val_start
    y, seg = ser.y[tr], ser.segment[tr]
    if len(y) <= season:
        return [None] * ser.y.shape[1]
    d = np.abs(y[season:] - y[:-season])[seg[season:] == seg[:-season]]
    out = []
    for j in range(y.shape[1]):
        v = d[:, j][~np.isnan(d[:, j])] if len(d) else np.zeros(0)
        out.append(float(v.mean()) if len(v) and v.mean() > 0 else None)
    return out


def window_ends(ser: Series, spec: Spec) -> np.ndarray:
    """Rows ``t`` where a window of ``lookback`` inputs ends with its label(s) present, inside one segment."""
    n, L, H = len(ser.times), spec.lookback, spec.horizon
    ok_row = ~np.isnan(ser.feats).any(axis=1)
    ends = []
    # cumulative count of bad rows to test a whole window at once
    bad = np.concatenate([[0], np.cumsum(~ok_row)])
    for t in range(L - 1, n - H):
        lo = t - L + 1
        if ser.segment[lo] != ser.segment[t + H]:
            continue
        if bad[t + 1] - bad[lo] > 0:
            continue
        if spec.event:
            if np.isnan(ser.event[t + H]):
                continue
        elif np.isnan(ser.y[t:t + H + 1]).any():
            continue
        ends.append(t)
    return np.asarray(ends, dtype=np.int64)


def make_windows(data: TSData, val_start, test_start, require_train: bool = True) -> None:
    spec = data.spec
    out = {"train": [], "val": [], "test": []}
    for s, ser in enumerate(data.series):
        ends = window_ends(ser, spec)
        if len(ends) == 0:
            continue
        origin = ser.times[ends]
        last_label = ser.times[ends + spec.horizon]
        tr = ends[last_label < val_start]
        va = ends[(origin >= val_start) & (last_label < test_start)]
        te = ends[origin >= test_start]
        for k, v in (("train", tr), ("val", va), ("test", te)):
            out[k].append(np.column_stack([np.full(len(v), s), v]))
    for k, v in out.items():
        data.windows[k] = np.vstack(v) if v else np.zeros((0, 2), dtype=np.int64)
    need = spec.lookback + max(spec.horizon, 1)
    if require_train and len(data.series) > 1:
        for ser in data.series:
            if len(ser.times) < need:
                raise DataError(f"{spec.data}: series {ser.name!r} has {len(ser.times)} rows, fewer than --lookback "
                                f"{spec.lookback} + --horizon {max(spec.horizon, 1)} = {need}; drop it or shorten the window")
    if require_train and len(data.windows["train"]) == 0:
        short = min(data.series, key=lambda se: len(se.times))
        who = f"series {short.name!r}" if (spec.group or spec.wide) else "the series"
        raise DataError(f"{spec.data}: no training window: {who} has {len(short.times)} rows "
                        f"({int((short.times < val_start).sum())} before the validation start), but a window needs "
                        f"--lookback {spec.lookback} + --horizon {max(spec.horizon, 1)} = {need} consecutive rows")


def last_window(ser: Series, spec: Spec, data_name: str) -> int:
    """End row of the most recent complete input window of a series (for `forecast`)."""
    L = spec.lookback
    n = len(ser.times)
    if n < L:
        raise DataError(f"{data_name}: series {ser.name!r} has {n} rows, fewer than the model's lookback {L}")
    t = n - 1
    lo = t - L + 1
    if ser.segment[lo] != ser.segment[t] or np.isnan(ser.feats[lo:t + 1]).any():
        raise DataError(f"{data_name}: series {ser.name!r}: the last {L} rows are not a complete window "
                        f"(a gap or missing values); --missing ffill may help")
    return t


def rollout_inputs(data: "TSData", windows: np.ndarray, horizon: int, n_targets: int) -> Tuple[np.ndarray, np.ndarray]:
    """What an autoregressive rollout appends besides its predictions: the calendar features of
    each future step ``(B, H, F)`` and the offset of a target's input row ``(B, K)`` (0 for
    levels; mean / scale for changes, whose input is ``(d - mean) / scale``). One home for
    the torch rollout (:func:`rnnkit.tasks.forecast.rollout`) and the ONNX one."""
    cal, offset = [], []
    for s, e in windows:
        ser = data.series[int(s)]
        future = future_times(ser.times[e], ser.freq, horizon)
        cal.append(calendar_features(np.array(future, dtype="datetime64[ns]"), ser.freq) if data.spec.calendar
                   else np.zeros((horizon, 0)))
        mean, scale = data.target_scale(int(s))
        offset.append(np.zeros(n_targets) if data.spec.transform == "levels" else mean / scale)
    return np.stack(cal), np.stack(offset)
