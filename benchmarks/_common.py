"""Shared plumbing for benchmark scripts: machine description and JSON output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> Dict[str, Any]:
    import numpy as np

    info = {"python": platform.python_version(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "numpy": np.__version__, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    try:
        import torch

        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    except ImportError:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def write_json(name: str, payload: Dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def median(xs):
    return statistics.median(xs)


def emit(summary: Dict[str, Any]) -> None:
    """The last line of output: one JSON object."""
    sys.stdout.flush()
    print(json.dumps(summary), flush=True)
