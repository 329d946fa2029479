"""Plumbing shared by the verbs: one-line argparse errors, flags generated from config dataclasses."""

from __future__ import annotations

import argparse
import math
from dataclasses import fields
from typing import Any, Dict

from .. import limits
from ..errors import one_line, shown


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of usage dumps."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {one_line(message, 1000)}\n")  # argparse quotes values whole


def _number(name: str, kind, s: str):
    what = "an integer" if kind is int else "a number"
    try:
        v = kind(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name} must be {what}, got {shown(s)}") from None
    if kind is float and not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{name} must be a finite number, got {s}")
    return v


def bounded(name: str, kind=float, low: float = 0, inclusive: bool = True):
    """An argparse type: a finite number of ``kind`` that is >= ``low`` (or > ``low``), with a
    one-line error naming the option otherwise."""

    def parse(s: str):
        v = _number(name, kind, s)
        if not (v >= low if inclusive else v > low):
            raise argparse.ArgumentTypeError(f"{name} must be {'>=' if inclusive else '>'} {low:g}, got {s}")
        return v
    return parse


def positive_int(name: str):
    return bounded(name, int, 1)


def name_list(name: str, choices):
    """An argparse type: a non-empty comma-separated list of ``choices`` (a sequence, or a
    callable returning one, so a registry is only imported when the flag is parsed)."""
    def parse(s: str) -> list:
        allowed = tuple(choices() if callable(choices) else choices)
        names = [c.strip() for c in s.split(",") if c.strip()]
        if not names or set(names) - set(allowed):
            raise argparse.ArgumentTypeError(f"{name} takes a comma-separated list of {', '.join(allowed)}; got {s!r}")
        return names
    return parse


def limited(name: str, key: str):
    """An argparse type for flag ``name`` with the range of ``rnnkit.limits.FLAGS[key]``:
    one line naming the flag and the allowed range when the value lies outside it."""
    lim = limits.FLAGS[key]

    def parse(s: str):
        v = _number(name, lim.kind, s)
        if v < lim.low or (lim.low_open and v == lim.low):
            raise argparse.ArgumentTypeError(f"{name} must be {'>' if lim.low_open else '>='} {limits.num(lim.low)}, got {s}")
        if lim.high is not None and v > lim.high:
            why = f" ({lim.why})" if lim.why else ""
            raise argparse.ArgumentTypeError(f"{name} must be <= {limits.num(lim.high)}{why}, got {s}")
        return v
    return parse


def _flag_type(base: type, flag: str):
    """argparse's ``type`` for a config field: plain int, or a float refusing inf/nan here
    (the dataclass checks the range and names the flag again)."""
    if base is int:
        return lambda s: _number(flag, int, s)
    if base is float:
        return lambda s: _number(flag, float, s)
    return str


def add_config_flags(p: argparse.ArgumentParser, task: str) -> None:
    from ..training.config import field_types, sections_for

    for section, cls in sections_for(task).items():
        group = p.add_argument_group(f"{section} options")
        types = field_types(cls)
        for f in fields(cls):
            flag = f.metadata.get("flag")
            if not flag:
                continue
            default = f.default
            base = types[f.name][0]
            help_text = f.metadata["help"] + ("" if default is None else f" (default: {default})")
            help_text = help_text.replace("%", "%%")  # argparse %-formats help strings ("20%" crashed --help)
            kwargs: Dict[str, Any] = {"dest": f"{section}.{f.name}", "default": argparse.SUPPRESS, "help": help_text}
            if base is bool:
                kwargs["action"] = argparse.BooleanOptionalAction
            else:
                kwargs["type"] = _flag_type(base, flag)
                kwargs["metavar"] = "N" if base is int else "X" if base is float else f.name.upper()
                if "choices" in f.metadata:
                    kwargs["choices"] = f.metadata["choices"]
                    kwargs.pop("metavar")
            group.add_argument(flag, **kwargs)


def overrides_from(args: argparse.Namespace) -> Dict[str, Dict[str, Any]]:
    out: Dict[str, Dict[str, Any]] = {}
    for key, value in vars(args).items():
        if "." in key:
            section, name = key.split(".", 1)
            out.setdefault(section, {})[name] = value
    return out


def arima_order(s: str) -> str:
    """argparse type of ``backtest --arima``: ``auto``, ``none`` or ``p,d,q`` with each order
    inside ``rnnkit.limits.FLAGS['arima.*']`` (returned unchanged)."""
    if s in ("auto", "none"):
        return s
    parts = s.split(",")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"--arima must be auto, none or p,d,q (e.g. 1,1,0), got {shown(s)}")
    for key, v in zip("pdq", parts):
        limited(f"--arima {key}", f"arima.{key}")(v.strip())
    return s
