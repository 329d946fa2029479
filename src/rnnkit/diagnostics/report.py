"""Where diagnostics and bundled benchmarks put their results: the ``--out`` directory
(checked and created, one ``rnnkit: error:`` line when it cannot be) and JSON files
(NaN and infinities written as ``null``, written whole through :mod:`rnnkit.fileio`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import ConfigError
from ..fileio import write_text


def out_dir(out: str) -> Path:
    """``--out`` as a writable directory, created if missing."""
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path}: --out exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{path}: cannot create --out ({e.strerror or e})") from None
    if not os.access(path, os.W_OK):
        raise ConfigError(f"{path}: --out is not writable")
    return path


def finite_json(obj):
    """Replace NaN and infinities (not valid JSON) by null, recursively."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    return obj


def write_json(path: Path, payload) -> None:
    """``payload`` as indented JSON at ``path`` (temporary file + rename)."""
    write_text(path, json.dumps(finite_json(payload), indent=1, allow_nan=False) + "\n")
