"""Load benchmark of ``rnnkit serve``: throughput and latency with and without micro-batching.

    python benchmarks/serve.py --quick          # < 60 s: tiny training budgets, fewer requests
    python benchmarks/serve.py                  # 32 clients, >= 10,000 requests (a few minutes)
    python benchmarks/serve.py --sentiment runs/sst2 --forecast runs/seattle --charlm runs/demo

Models: without ``--sentiment``, the SST-2 recipe's model is trained for a bounded time:
``rnnkit train sentiment --config configs/sentiment-sst2.yaml --max-time 3 --threads 1 --out
runs/bench-serve/sst2`` (``--quick``: 30 steps); without ``--forecast``, the Seattle recipe
(``configs/forecast-seattle.yaml``, 600 steps); without ``--charlm``, a charlm of
``configs/charlm-demo.yaml``'s shape trained 20 steps on tinyshakespeare (its weights do not
matter for speed). ``--quick`` trains each 2-3 steps (charlm: ``charlm-tiny.yaml``). Trained runs are kept under ``--runs`` and reused.

Correctness first: sentiment answers of concurrent (batched) requests must equal the same
texts sent one at a time. Then, against one worker on loopback (``--no-access-log``):

1. **batched** (``--max-batch 32 --batch-wait-ms 5``) and **unbatched** (``--max-batch 1
   --batch-wait-ms 0``) servers, same models, same client: C concurrent clients (async
   keep-alive connections, one each, this process pinned to one core with ``os.sched_setaffinity``;
   the server keeps every core), each sending one SST-2 dev sentence per request until the
   request count or the time bound is reached; then forecast requests (the Seattle model,
   from the end of its data) on the batched server;
2. server RSS of the batched server before and after its sentiment rounds;
3. charlm ``"stream": true`` at length 500: time to the first event and to the first
   generated character (median of 5);
4. cold start: the batched server holds all three models; the time from starting
   ``rnnkit serve`` to ``/ready`` answering 200.

The last line is JSON with ``requests``, ``sentiment_rps_batched``, ``sentiment_rps_unbatched``,
``batching_speedup``, ``p99_ms_batched``, ``errors``, ``rss_growth_fraction`` (and more);
the whole result goes to ``benchmarks/results/serve[-quick].json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, machine, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
RNNKIT = [sys.executable, "-m", "rnnkit.cli.main"]
QUIET = ["--no-progress", "--logger", "none", "--threads", "1", "--overwrite"]
BATCHED = ["--max-batch", "32", "--batch-wait-ms", "5"]
UNBATCHED = ["--max-batch", "1", "--batch-wait-ms", "0"]


def train(out: Path, args: List[str]) -> Path:
    if (out / "config.json").exists():
        return out
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    t0 = time.perf_counter()
    subprocess.run([*RNNKIT, "train", *args, "--out", str(out), *QUIET], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    print(f"trained {out} in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return out


def models(a) -> Dict[str, str]:
    runs = Path(a.runs)
    steps = ["--max-steps", "3"] if a.quick else []
    sst2 = a.sentiment or train(runs / "sst2", ["sentiment", "--config", "configs/sentiment-sst2.yaml",
                                                *(steps or ["--max-time", str(a.train_minutes)])])
    seattle = a.forecast or train(runs / "seattle", ["forecast", "--config", "configs/forecast-seattle.yaml", *steps])
    lm = a.charlm or train(runs / "charlm", ["charlm", "--data", "tinyshakespeare", "--config",
                                             f"configs/charlm-{'tiny' if a.quick else 'demo'}.yaml", "--max-steps",
                                             "2" if a.quick else "20"])
    return {"sst2": str(sst2), "seattle": str(seattle), "charlm": str(lm)}


@contextmanager
def server(ms: Dict[str, str], flags: List[str], log: Path):
    """The server is started with every core (it inherits this process's affinity)."""
    from rnnkit.serve.launch import serve_process

    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(0, range(os.cpu_count() or 1))
    try:
        cm = serve_process(ms, "--no-access-log", *flags, log=log)
        srv = cm.__enter__()
    finally:
        os.sched_setaffinity(0, mine)
    try:
        yield srv
    finally:
        cm.__exit__(None, None, None)


class Conn:
    """A minimal keep-alive HTTP/1.1 client connection (POST JSON, read a Content-Length
    answer). httpx costs about 4 ms of CPU per request here, more than the server itself,
    so the load phases use this (~0.1 ms); the checks use httpx."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: Optional[asyncio.StreamReader] = None
        self.writer: Optional[asyncio.StreamWriter] = None

    async def post(self, path: str, body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(b"POST /%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (path.encode(), self.host.encode(), len(body), body))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await self.reader.readexactly(length)
        if b"connection: close" in head.lower():
            await self.close()
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def cpu_seconds(pid: Optional[int] = None) -> float:
    """CPU time (user + system) of process ``pid`` (Linux /proc), or of this process."""
    if pid is None:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(url: str, path: str, bodies: List[Dict[str, Any]], clients: int, total: int,
               seconds: float, into: Optional[Dict[str, Any]] = None, pid: Optional[int] = None) -> Dict[str, Any]:
    """``clients`` concurrent connections posting ``bodies`` round-robin until ``total``
    requests or ``seconds``; latency percentiles, throughput, errors (added to the raw
    latencies, errors and wall time of ``into`` when given, so rounds can be pooled)."""
    from urllib.parse import urlsplit

    u = urlsplit(url)
    payloads = [json.dumps(b).encode() for b in bodies]
    lat: List[float] = []
    errors: Dict[str, int] = {}
    sent = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal sent
        conn = Conn(u.hostname or "127.0.0.1", u.port or 80)
        try:
            while sent < total and time.perf_counter() < deadline:
                body = payloads[sent % len(payloads)]
                sent += 1
                t0 = time.perf_counter()
                try:
                    status = await conn.post(path, body)
                    if status != 200:
                        errors[str(status)] = errors.get(str(status), 0) + 1
                except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                    errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                    await conn.close()
                lat.append(time.perf_counter() - t0)
        finally:
            await conn.close()

    cpu0 = (cpu_seconds(pid) if pid else 0.0, cpu_seconds())
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    wall = time.perf_counter() - t0
    cpu = (cpu_seconds(pid) - cpu0[0] if pid else 0.0, cpu_seconds() - cpu0[1])
    if into is not None:
        into["cpu"] = (into.get("cpu", (0.0, 0.0))[0] + cpu[0], into.get("cpu", (0.0, 0.0))[1] + cpu[1])
        cpu = into["cpu"]
        into.setdefault("lat", []).extend(lat)
        into["wall"] = into.get("wall", 0.0) + wall
        for k, v in errors.items():
            into.setdefault("errors", {})[k] = into.get("errors", {}).get(k, 0) + v
        lat, wall, errors = into["lat"], into["wall"], into.get("errors", {})
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [lat[0]] * 99
    return {"requests": len(lat), "seconds": round(wall, 3), "rps": round(len(lat) / wall, 1),
            "p50_ms": round(q[49] * 1000, 2), "p95_ms": round(q[94] * 1000, 2), "p99_ms": round(q[98] * 1000, 2),
            "errors": sum(errors.values()), "error_kinds": errors,
            "server_cpu_ms_per_request": round(cpu[0] / len(lat) * 1000, 3) if pid else None,
            "client_cpu_ms_per_request": round(cpu[1] / len(lat) * 1000, 3)}


def sst2_sentences(n: int) -> List[str]:
    from rnnkit.data.datasets import find_dataset_dir

    folder = find_dataset_dir("sst2")
    path = folder / "dev.tsv" if folder else Path("/nonexistent")
    lines = path.read_text(encoding="utf-8").splitlines()[1:] if path.exists() else []
    texts = [ln.split("\t")[0] for ln in lines if ln.strip()]
    return (texts or ["a gorgeous , witty , seductive movie .", "the plot is nothing but boilerplate ."] * 50)[:n]


def check_batched_equals_alone(url: str, texts: List[str]) -> Dict[str, Any]:
    import httpx

    with httpx.Client(base_url=url, timeout=60) as c:
        alone = [c.post("v1/models/sst2/predict", json={"texts": [t]}).json()["predictions"][0] for t in texts]

    async def together():
        async with httpx.AsyncClient(base_url=url, timeout=60) as ac:
            rs = await asyncio.gather(*(ac.post("v1/models/sst2/predict", json={"texts": [t]}) for t in texts))
            return [r.json()["predictions"][0] for r in rs], (await ac.get("v1/models/sst2")).json()["served"]

    batched, stats = asyncio.run(together())
    worst = max(abs(a["probability"] - b["probability"]) for a, b in zip(alone, batched))
    same = all(a["label"] == b["label"] for a, b in zip(alone, batched))
    assert same and worst < 1e-5, f"batched answers differ from single ones (max |dp| = {worst})"
    return {"texts": len(texts), "labels_equal": same, "max_abs_probability_diff": worst,
            "largest_batch_seen": stats["largest_batch"]}


def served(url: str) -> Dict[str, Any]:
    import httpx

    return httpx.get(url + "v1/models/sst2", timeout=30).json()["served"]


def stream_latency(url: str, length: int, tries: int = 5) -> Dict[str, Any]:
    import httpx

    first, first_generated = [], []
    with httpx.Client(base_url=url, timeout=60) as c:
        for i in range(tries + 1):
            t0 = time.perf_counter()
            events = 0
            with c.stream("POST", "v1/models/charlm/predict",
                          json={"prime": "ROMEO:", "length": length, "seed": i, "stream": True}) as r:
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        events += 1
                        if events == 1:
                            t1 = time.perf_counter() - t0
                        elif events == 2:
                            t2 = time.perf_counter() - t0
            if i:  # the first is a warm-up
                first.append(t1)
                first_generated.append(t2)
    return {"length": length, "first_event_ms": round(statistics.median(first) * 1000, 1),
            "first_generated_char_ms": round(statistics.median(first_generated) * 1000, 1), "events": events}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="< 60 s: tiny training budgets and fewer requests")
    ap.add_argument("--sentiment", help="a sentiment checkpoint (default: train the SST-2 recipe for --train-minutes)")
    ap.add_argument("--forecast", help="a forecast checkpoint (default: train the Seattle recipe)")
    ap.add_argument("--charlm", help="a charlm checkpoint (default: configs/charlm-demo.yaml's model, 20 steps)")
    ap.add_argument("--runs", default=str(ROOT / "runs" / "bench-serve"), help="where trained models are kept")
    ap.add_argument("--train-minutes", type=float, default=3.0)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=None, help="interleaved batched/unbatched rounds (default 5; quick 2)")
    ap.add_argument("--requests", type=int, default=None, help="sentiment requests per server (default 10000; quick 800)")
    ap.add_argument("--max-seconds", type=float, default=None, help="time bound per load phase (default 240; quick 5)")
    ap.add_argument("--out", default=None, help="result name in benchmarks/results (default serve / serve-quick)")
    a = ap.parse_args()
    if a.quick and a.runs == str(ROOT / "runs" / "bench-serve"):
        a.runs += "-quick"
    a.requests = a.requests or (800 if a.quick else 10_000)
    a.max_seconds = a.max_seconds or (5.0 if a.quick else 240.0)
    a.rounds = a.rounds or (2 if a.quick else 5)
    return a


def measure(a: argparse.Namespace, ms: Dict[str, str], res: Dict[str, Any]) -> None:
    """Both servers up at once; correctness, then interleaved sentiment rounds, forecast, charlm."""
    n, secs, logs, path = a.requests, a.max_seconds, Path(a.runs), "v1/models/sst2/predict"
    texts = sst2_sentences(872)
    bodies = [{"texts": [t]} for t in texts]
    with server(ms, BATCHED, logs / "batched.log") as srv, \
            server({"sst2": ms["sst2"], "seattle": ms["seattle"]}, UNBATCHED, logs / "unbatched.log") as plain:
        res["ready_seconds_three_models"] = round(srv.ready_seconds, 2)
        res["correctness"] = check_batched_equals_alone(srv.url, texts[:64])
        for s in (srv, plain):  # warm-up
            asyncio.run(load(s.url, path, bodies, a.clients, 200, 30))
        res["rss_before"] = srv.rss_bytes()
        # interleaved rounds: both servers see the same machine load (other tenants come and go)
        pooled: Dict[str, Dict[str, Any]] = {"batched": {}, "unbatched": {}}
        served0 = [served(s.url) for s in (srv, plain)]
        for _ in range(a.rounds):
            res["batched"] = asyncio.run(load(srv.url, path, bodies, a.clients, n // a.rounds, secs / a.rounds,
                                              pooled["batched"], srv.proc.pid))
            res["unbatched"] = asyncio.run(load(plain.url, path, bodies, a.clients, n // 3 // a.rounds,
                                                secs / 2 / a.rounds, pooled["unbatched"], plain.proc.pid))
        res["rss_after"] = srv.rss_bytes()
        for name, s, before in zip(("batched", "unbatched"), (srv, plain), served0):
            after = served(s.url)
            per = lambda k: round((after[k] - before[k]) / (after["requests"] - before["requests"]) * 1000, 3)  # noqa: E731
            res[name].update(model_cpu_ms_per_request=per("model_cpu_seconds"),
                             model_wall_ms_per_request=per("model_seconds"),
                             texts_per_model_call=round((after["items"] - before["items"]) /
                                                        max(1, after["batches"] - before["batches"]), 2))
        res["forecast_batched"] = asyncio.run(load(srv.url, "v1/models/seattle/predict", [{}], a.clients,
                                                   n // 10, secs / 4))
        res["charlm_stream"] = stream_latency(srv.url, 500)


def summarize(res: Dict[str, Any]) -> Dict[str, Any]:
    phases = [res["batched"], res["unbatched"], res["forecast_batched"]]
    return {
        "requests": sum(p["requests"] for p in phases),
        "sentiment_rps_batched": res["batched"]["rps"], "sentiment_rps_unbatched": res["unbatched"]["rps"],
        "batching_speedup": round(res["batched"]["rps"] / res["unbatched"]["rps"], 2),
        "p99_ms_batched": res["batched"]["p99_ms"], "p99_ms_unbatched": res["unbatched"]["p99_ms"],
        "forecast_rps_batched": res["forecast_batched"]["rps"],
        "errors": sum(p["errors"] for p in phases),
        "rss_growth_fraction": round((res["rss_after"] - res["rss_before"]) / res["rss_before"], 4),
        "rss_mb_before_after": [round(res["rss_before"] / 2**20, 1), round(res["rss_after"] / 2**20, 1)],
        "charlm_first_event_ms": res["charlm_stream"]["first_event_ms"],
        "charlm_first_generated_char_ms": res["charlm_stream"]["first_generated_char_ms"],
        "ready_seconds_three_models": res["ready_seconds_three_models"],
    }


def print_table(res: Dict[str, Any]) -> None:
    print(f"{'':24}{'rps':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}{'requests':>10}")
    for name in ("batched", "unbatched", "forecast_batched"):
        p = res[name]
        print(f"{name:24}{p['rps']:8.1f}{p['p50_ms']:9.2f}{p['p95_ms']:9.2f}{p['p99_ms']:9.2f}{p['errors']:8d}"
              f"{p['requests']:10d}")
    for name in ("batched", "unbatched"):
        p = res[name]
        print(f"{name}: per request, server CPU {p['server_cpu_ms_per_request']} ms, of which inside the model "
              f"{p['model_cpu_ms_per_request']} ms ({p['texts_per_model_call']} texts per call); client CPU "
              f"{p['client_cpu_ms_per_request']} ms")


def main() -> None:
    a = parse_args()
    os.chdir(ROOT)
    t_start = time.perf_counter()
    ms = models(a)
    cpu = sorted(os.sched_getaffinity(0))[-1]
    os.sched_setaffinity(0, {cpu})  # the client: one core (servers are started with every core)
    res: Dict[str, Any] = {"machine": machine(), "clients": a.clients, "client_cpu": cpu, "quick": a.quick,
                           "models": ms}
    measure(a, ms, res)
    res["summary"] = summary = {**summarize(res), "seconds": round(time.perf_counter() - t_start, 1)}
    path = write_json(a.out or ("serve-quick" if a.quick else "serve"), res)
    print_table(res)
    print(f"wrote {path}", file=sys.stderr)
    emit(summary)


if __name__ == "__main__":
    main()
