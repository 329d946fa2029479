"""The token rule against the real server, and `rnnkit serve`'s own checks (one line, exit 2)."""

from __future__ import annotations

import httpx
import pytest

from rnnkit.cli.main import main
from rnnkit.serve.launch import serve_process

TOKEN = "s3cret-token-0123456789abcdef"


@pytest.fixture(scope="module")
def guarded(tiny_runs, tmp_path_factory):
    d = tmp_path_factory.mktemp("token")
    (d / "token").write_text(TOKEN + "\n")
    with serve_process({"sentiment": str(tiny_runs["sentiment"])}, "--token-file", str(d / "token"),
                       log=d / "server.log", token=TOKEN) as srv:
        yield srv


@pytest.mark.parametrize("method,path", [("GET", "ready"), ("GET", "v1/models"), ("GET", "v1/models/sentiment"),
                                         ("POST", "v1/models/sentiment/predict"), ("GET", "openapi.json"),
                                         ("GET", "docs"), ("GET", "")])
def test_every_endpoint_but_health_needs_the_token(guarded, method, path):
    body = {"texts": ["a great film"]} if method == "POST" else None
    with httpx.Client(base_url=guarded.url, timeout=30) as c:
        assert c.get("health").status_code == 200  # liveness stays open
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                        {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": TOKEN}):
            r = c.request(method, path, json=body, headers=headers)
            assert r.status_code == 401, (headers, r.text)
            assert r.headers["www-authenticate"] == "Bearer" and "token" in r.json()["error"]
        ok = c.request(method, path, json=body, headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200, ok.text


def one_line(capsys, argv, *needles):
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own checks: "rnnkit serve: error: ..."
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(("rnnkit: error: ", "rnnkit serve: error: ")) and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    for n in needles:
        assert n in err, err


def test_cli_refuses_bad_runs_names_and_tokens(tiny_runs, tmp_path, capsys):
    run = str(tiny_runs["sentiment"])
    one_line(capsys, ["serve", str(tmp_path / "nothing")], "nothing", "no such checkpoint directory")
    (tmp_path / "empty").mkdir()
    one_line(capsys, ["serve", str(tmp_path / "empty")], "empty")
    one_line(capsys, ["serve", f"../up={run}"], "../up", "model name")
    one_line(capsys, ["serve", f"a..b={run}"], "a..b")
    one_line(capsys, ["serve", f"x={run}", f"x={tiny_runs['charlm']}"], "two models named 'x'")
    one_line(capsys, ["serve", run, "--token-file", str(tmp_path / "missing")], "missing", "--token-file")
    (tmp_path / "short").write_text("abc\n")
    one_line(capsys, ["serve", run, "--token-file", str(tmp_path / "short")], "at least 16")
    (tmp_path / "blank").write_text("\n\n")
    one_line(capsys, ["serve", run, "--token-file", str(tmp_path / "blank")], "one token")
    one_line(capsys, ["serve", run, "--max-batch", "0"], "--max-batch")
    one_line(capsys, ["serve", run, "--batch-wait-ms", "-1"], "--batch-wait-ms")
    one_line(capsys, ["serve", run, "--max-body-mb", "0"], "--max-body-mb")
    one_line(capsys, ["serve", run, "--port", "70000"], "--port must be <= 65535")
    one_line(capsys, ["serve", run, "--port", "http"], "--port must be an integer")


def test_a_port_in_use_is_one_line(tiny_runs, capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        one_line(capsys, ["serve", str(tiny_runs["sentiment"]), "--port", str(port)], f"--port {port}",
                 "cannot listen")
    one_line(capsys, ["serve", str(tiny_runs["sentiment"]), "--host", "no-such-host.invalid"], "--host")


def test_non_loopback_without_a_token_warns(tiny_runs, tmp_path):
    with serve_process({"s": str(tiny_runs["sentiment"])}, "--host", "0.0.0.0", log=tmp_path / "log") as srv:
        out = srv.output()
    warning = [ln for ln in out.splitlines() if ln.startswith("rnnkit: warning:")]
    assert len(warning) == 1 and "0.0.0.0" in warning[0] and "--token-file" in warning[0]


def test_loopback_default_does_not_warn(guarded):
    assert "warning" not in guarded.output().split("Uvicorn running")[0].lower()
    assert "127.0.0.1" in guarded.output()


@pytest.mark.slow
def test_two_workers_each_build_the_app_from_the_factory(tiny_runs, tmp_path):
    """--workers 2: uvicorn starts two processes that each call the app factory (config via
    the temporary JSON file); both answer, with the same predictions."""
    import time

    texts = ["a wonderful film", "dull and boring"]
    with serve_process({"s": str(tiny_runs["sentiment"])}, "--workers", "2", log=tmp_path / "log") as srv:
        ready = set()
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            t0 = time.perf_counter()
            while len(ready) < 2 and time.perf_counter() - t0 < 90:  # until both workers answered ready
                with httpx.Client(base_url=srv.url, timeout=60) as fresh:  # a new connection: any worker
                    r = fresh.get("ready")
                if r.status_code == 200:
                    ready.add(r.json()["worker"])
            answers = [c.post("v1/models/s/predict", json={"texts": texts}).json()["predictions"] for _ in range(10)]
    assert len(ready) == 2 and srv.proc.pid not in ready  # two worker processes, not the supervisor
    assert all(a == answers[0] for a in answers)
