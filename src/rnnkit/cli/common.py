"""Plumbing shared by the verbs: one-line argparse errors, flags generated from config dataclasses."""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any, Dict


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of usage dumps."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def bounded(name: str, kind=float, low: float = 0, inclusive: bool = True):
    """An argparse type: a number of ``kind`` that is >= ``low`` (or > ``low``), with a
    one-line error naming the option otherwise."""
    what = "an integer" if kind is int else "a number"

    def parse(s: str):
        try:
            v = kind(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {what}, got {s!r}") from None
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


def add_config_flags(p: argparse.ArgumentParser, task: str) -> None:
    from ..training.config import sections_for

    for section, cls in sections_for(task).items():
        group = p.add_argument_group(f"{section} options")
        for f in fields(cls):
            flag = f.metadata.get("flag")
            if not flag:
                continue
            default = f.default
            typ = f.type if isinstance(f.type, str) else str(f.type)
            help_text = f.metadata["help"] + ("" if default is None else f" (default: {default})")
            help_text = help_text.replace("%", "%%")  # argparse %-formats help strings ("20%" crashed --help)
            kwargs: Dict[str, Any] = {"dest": f"{section}.{f.name}", "default": argparse.SUPPRESS, "help": help_text}
            if "bool" in typ:
                kwargs["action"] = argparse.BooleanOptionalAction
            else:
                kwargs["type"] = int if ("int" in typ and "float" not in typ) else float if "float" in typ else str
                kwargs["metavar"] = "N" if kwargs["type"] is int else "X" if kwargs["type"] is float else f.name.upper()
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


