"""Start ``rnnkit serve`` in a child process on a free loopback port and wait until it is
ready; stop it on exit. Used by the tests and ``benchmarks/serve.py`` (the real server, no
stand-ins).

    with serve_process({"sst2": "runs/sst2"}, "--max-batch", "32") as srv:
        httpx.get(srv.url + "v1/models")
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, Optional, Sequence


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    proc: subprocess.Popen
    url: str  # ends with "/"
    log: Path
    ready_seconds: float

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def rss_bytes(self) -> int:
        """Resident memory of the server process (Linux /proc)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0


def _get(url: str, headers: Dict[str, str], timeout: float = 2.0):
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None, None


@contextmanager
def serve_process(models: Dict[str, str], *flags: str, log: Path, token: Optional[str] = None,
                  timeout: float = 120.0, env: Optional[Dict[str, str]] = None,
                  python: Sequence[str] = (sys.executable,)) -> Iterator[ServerProcess]:
    """``rnnkit serve NAME=RUN ... --port P FLAGS`` until ``/ready`` answers 200 (or fail with its log)."""
    port = free_port()
    src = str(Path(__file__).resolve().parents[2])  # this checkout's src/, so the child runs the same code
    env = dict(env if env is not None else os.environ)
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "1")
    cmd = [*python, "-m", "rnnkit.cli.main", "serve", *(f"{k}={v}" for k, v in models.items()),
           "--port", str(port), *flags]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"http://127.0.0.1:{port}/"
    t0 = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while True:
            status, _ = _get(url + "ready", headers)
            if status == 200:
                break
            if proc.poll() is not None:
                raise RuntimeError(f"rnnkit serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"rnnkit serve not ready after {timeout:.0f} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)
        yield ServerProcess(proc, url, log, time.perf_counter() - t0)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server and its workers (its own session)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
