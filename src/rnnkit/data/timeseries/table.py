"""Reading a forecasting table: a named data set or CSV -> a tidy frame (``__series``,
``__time``, ``__row``, ``__event`` columns), sorted by time within each series, with
duplicate timestamps, unknown columns and non-numeric targets refused."""

from __future__ import annotations

from pathlib import Path
from typing import List

import numpy as np

from ...errors import DataError, shown
from .spec import NO, PRESETS, YES, Spec, parse_event

def read_table(spec: Spec):
    """The raw table as a pandas DataFrame (named data set or CSV path), ``NA`` tokens as missing."""
    import pandas as pd

    preset = PRESETS.get(spec.data)
    if preset is not None:
        src = preset["source"]
        if src.startswith("vega:"):
            from vega_datasets import local_data  # never `data`: it may go to the network

            return getattr(local_data, src[5:].replace("-", "_"))()
        from ..datasets import find_dataset_dir

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
        bad, zones = None, {}
        for i, v in enumerate(col):
            try:
                one = pd.to_datetime(v)
                if pd.isna(one):
                    bad = (i, v)
                    break
            except (ValueError, TypeError, OverflowError):
                bad = (i, v)
                break
            zone = str(one.utcoffset()) if one.tzinfo is not None else "no time zone"
            if zones and zone not in zones:  # every value parses alone: the rows mix time zones
                (j, first), = zones.items()
                raise DataError(f"{spec.data}: column {shown(spec.time)} mixes time zones: row {first + 2} has "
                                f"{j}, row {i + 2} has {zone} ({shown(v, 60)}); write every time in one zone")
            zones.setdefault(zone, i)
        i, v = bad if bad else (0, col.iloc[0])
        raise DataError(f"{spec.data}: column {shown(spec.time)}: cannot parse {shown(v)} as a date (row {i + 2})")
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
                raise DataError(f"{spec.data}: --event column {col!r} holds {shown(x)} at row {i + 2}; expected yes/no or 0/1 "
                                f"(or give a threshold such as '{col}>0')")
        return out
    import pandas as pd

    num = pd.to_numeric(v, errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(np.isnan(num) & v.notna().to_numpy())
    if len(bad):
        raise DataError(f"{spec.data}: --event column {col!r} is not numeric ({shown(v.iloc[bad[0]])} at row {bad[0] + 2})")
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
                raise DataError(f"{spec.data}: target column {c!r} is not numeric ({shown(df[c].iloc[bad[0]])} at row {bad[0] + 2})")
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
        df["__series"] = df[spec.group].astype(str) if spec.group else single_series_name(spec)
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


def single_series_name(spec: Spec) -> str:
    """The name of an ungrouped table's one series: its target (``temp_max``), or the event's
    column for an event forecast; checkpoints written before this named it ``series``."""
    if spec.targets:
        return ",".join(spec.targets)
    return parse_event(spec.event)[0] if spec.event else "series"
