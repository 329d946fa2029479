"""benchmarks/serve.py's load generator against the real server: it counts what it sends,
what succeeded and what did not."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "serve.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_serve", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_load_counts_requests_latencies_and_errors(bench, server):
    path = "v1/models/sentiment/predict"
    ok = asyncio.run(bench.load(server.url, path, [{"texts": ["great fun"]}, {"texts": ["dull"]}], 4, 40, 60,
                                pid=server.proc.pid))
    assert ok["requests"] == 40 and ok["errors"] == 0 and ok["rps"] > 0
    assert 0 < ok["p50_ms"] <= ok["p95_ms"] <= ok["p99_ms"] and ok["server_cpu_ms_per_request"] > 0
    bad = asyncio.run(bench.load(server.url, path, [{"texts": []}], 3, 9, 60))
    assert bad["requests"] == 9 and bad["errors"] == 9 and bad["error_kinds"] == {"422": 9}
    pooled: dict = {}
    for _ in range(2):
        both = asyncio.run(bench.load(server.url, path, [{"texts": ["fun"]}], 2, 6, 60, pooled))
    assert both["requests"] == 12
