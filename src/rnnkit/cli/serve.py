"""``rnnkit serve RUN [NAME=RUN ...]``: serve checkpoints (or ONNX exports) over HTTP.

The options are checked here (each run's ``config.json`` is read, names are validated, the
token file is read), then written to a private temporary JSON file that every uvicorn worker
reads through the app factory :func:`rnnkit.serve.app.create_app_from_env`. See docs/serve.md.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

from ..errors import ConfigError
from .common import bounded, positive_int


def _port(s: str) -> int:
    import argparse

    v = bounded("--port", int, 1)(s)
    if v > 65535:
        raise argparse.ArgumentTypeError(f"--port must be <= 65535, got {s}")
    return v


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve models over HTTP (JSON API, streaming, a page to try them)",
                       description="Serve checkpoint or ONNX export directories over HTTP: GET / (a page to try "
                                   "them), /health, /ready, /v1/models, POST /v1/models/NAME/predict, /docs. "
                                   "Needs the extra: pip install 'rnnkit[serve]'.")
    p.add_argument("runs", nargs="+", metavar="RUN|NAME=RUN",
                   help="checkpoint or export directory, served under NAME (default: the directory's name)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=_port, default=8000, help="port (default: 8000)")
    p.add_argument("--workers", type=positive_int("--workers"), default=1,
                   help="worker processes, each with its own copy of the models and one torch thread (default: 1)")
    p.add_argument("--max-batch", type=positive_int("--max-batch"), default=32,
                   help="most items one batched model call runs (default: 32; 1 = no batching)")
    p.add_argument("--batch-wait-ms", type=bounded("--batch-wait-ms", float, 0), default=5.0,
                   help="how long a request waits for others to batch with (default: 5)")
    p.add_argument("--token-file", default=None, metavar="FILE",
                   help="file holding a bearer token; every endpoint but /health then needs 'Authorization: Bearer TOKEN'")
    p.add_argument("--max-body-mb", type=bounded("--max-body-mb", float, 0, inclusive=False), default=10.0,
                   help="largest request body in MB (default: 10)")
    p.add_argument("--max-texts", type=positive_int("--max-texts"), default=256, help="most texts per request (default: 256)")
    p.add_argument("--max-length", type=positive_int("--max-length"), default=5000,
                   help="most characters charlm generates per request (default: 5000)")
    p.add_argument("--max-audio-seconds", type=bounded("--max-audio-seconds", float, 0, inclusive=False), default=60.0,
                   help="longest audio clip accepted (default: 60)")
    p.add_argument("--no-access-log", action="store_true", help="do not log one line per request")
    p.set_defaults(func=cmd_serve)


def parse_runs(specs: List[str]) -> Dict[str, str]:
    """``RUN`` or ``NAME=RUN`` arguments as {name: directory}, each checked to hold a config.json."""
    from ..checkpoint import read_config
    from ..serve.config import check_name

    models: Dict[str, str] = {}
    for spec in specs:
        name, sep, run = spec.partition("=")
        if not sep:
            run = spec
            name = Path(spec.rstrip("/")).resolve().name
        path = Path(run).expanduser()
        if not path.is_dir():
            raise ConfigError(f"{run}: no such checkpoint directory")
        read_config(path)  # a clear error now, not in a worker later
        check_name(name)
        if name in models:
            raise ConfigError(f"two models named {name!r}: name them, e.g. {name}2={run}")
        models[name] = str(path.resolve())
    return models


def check_listen(host: str, port: int) -> None:
    """A one-line error now if ``host:port`` cannot be bound (in use, not an address here)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise ConfigError(f"--host {host}: not an address of this machine ({e.strerror})") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as e:
            raise ConfigError(f"--port {port}: cannot listen on {host}:{port} ({e.strerror})") from None


def cmd_serve(args) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as e:
        raise ConfigError(f"rnnkit serve needs the serve extra ({e.name} is missing): "
                          "pip install 'rnnkit[serve]'") from None
    from ..serve.config import ENV_VAR, ServeConfig, is_loopback, read_token

    models = parse_runs(args.runs)
    check_listen(args.host, args.port)
    if args.token_file:
        read_token(args.token_file)
    elif not is_loopback(args.host):
        print(f"rnnkit: warning: serving on {args.host} without --token-file: anyone who can reach this address "
              "can use the models", file=sys.stderr, flush=True)
    config = ServeConfig(models=models, max_batch=args.max_batch, batch_wait_ms=args.batch_wait_ms,
                         token_file=str(Path(args.token_file).resolve()) if args.token_file else None,
                         max_body_mb=args.max_body_mb, max_texts=args.max_texts, max_length=args.max_length,
                         max_audio_seconds=args.max_audio_seconds)
    fd, cfg_path = tempfile.mkstemp(prefix="rnnkit-serve-", suffix=".json")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(config.to_json())
        os.environ[ENV_VAR] = cfg_path
        os.environ.setdefault("OMP_NUM_THREADS", "1")  # one torch thread per worker
        url = f"http://{'[' + args.host + ']' if ':' in args.host else args.host}:{args.port}/"
        print(f"rnnkit: serving {', '.join(models)} at {url} (API docs at {url}docs; "
              f"{args.workers} worker(s))", file=sys.stderr, flush=True)
        uvicorn.run("rnnkit.serve.app:create_app_from_env", factory=True, host=args.host, port=args.port,
                    workers=args.workers, access_log=not args.no_access_log, log_level="info",
                    timeout_graceful_shutdown=5)
    finally:
        os.unlink(cfg_path)
    return 0
