"""Column roles and options of a forecasting data set: named presets, the resolved
:class:`Spec` (saved in checkpoints) and its consistency checks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from ...errors import ConfigError

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
