"""Plumbing shared by the verbs: one-line argparse errors, flags generated from config dataclasses."""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any, Dict


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of usage dumps."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def positive_int(name: str):
    def parse(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {s!r}") from None
        if v < 1:
            raise argparse.ArgumentTypeError(f"{name} must be >= 1, got {v}")
        return v
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


