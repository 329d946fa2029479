"""Tiny checkpoints of every task (trained a few steps through the CLI, once per session) and
the real server started on them in a subprocess."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Dict

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

from rnnkit.cli.main import main  # noqa: E402
from tests.fixtures.asr import write_digits  # noqa: E402
from tests.fixtures.forecast import daily_frame  # noqa: E402
from tests.fixtures.sentiment import synthetic_reviews, write_csv  # noqa: E402
from tests.fixtures.seq2seq import toy_pairs  # noqa: E402
from tests.util import make_text, tiny_train_args  # noqa: E402

QUIET = ["--no-progress", "--logger", "none", "--threads", "1"]


def _charlm(root: Path) -> Path:
    corpus = root / "tiny.txt"
    corpus.write_text(make_text(), encoding="utf-8")
    out = root / "charlm"
    assert main(tiny_train_args(corpus, out, "--max-steps", "3", "--threads", "1")) == 0
    return out


def _sentiment(root: Path) -> Path:
    data = write_csv(root / "reviews.csv", synthetic_reviews(200))
    out = root / "sentiment"
    assert main(["train", "sentiment", "--data", str(data), "--out", str(out), "--hidden", "16", "--embedding-dim", "16",
                 "--batch-size", "16", "--min-freq", "1", "--val-every", "20", "--checkpoint-every", "40",
                 "--warmup-steps", "5", "--lr", "1e-2", "--max-steps", "40", *QUIET]) == 0
    return out


def _forecast(root: Path) -> Path:
    csv = root / "daily.csv"
    daily_frame(120, groups=("A", "B")).to_csv(csv, index=False)
    out = root / "forecast"
    assert main(["train", "forecast", "--data", str(csv), "--time", "date", "--target", "temp", "--group", "site",
                 "--covariates", "humidity", "--horizon", "3", "--head", "gaussian", "--hidden", "8", "--lookback", "6",
                 "--batch-size", "16", "--max-steps", "4", "--val-every", "4", "--checkpoint-every", "4",
                 "--warmup-steps", "1", "--out", str(out), *QUIET]) == 0
    return out


def _asr(root: Path) -> Path:
    d = write_digits(root / "digits")
    out = root / "asr"
    assert main(["train", "asr", "--data", str(d), "--out", str(out), "--max-steps", "2", "--hidden", "8", "--layers", "1",
                 "--conv-channels", "2", "--n-mels", "16", "--batch-size", "4", "--val-every", "2",
                 "--checkpoint-every", "2", "--warmup-steps", "1", *QUIET]) == 0
    return out


def _seq2seq(root: Path) -> Path:
    src, tgt = toy_pairs(200)
    s, t = root / "train.en", root / "train.de.gz"
    s.write_text("".join(x + "\n" for x in src), encoding="utf-8")
    with gzip.open(t, "wt", encoding="utf-8") as f:
        f.write("".join(x + "\n" for x in tgt))
    out = root / "seq2seq"
    assert main(["train", "seq2seq", "--data", f"{s}:{t}", "--out", str(out), "--vocab-size", "48", "--encoder", "gru",
                 "--hidden", "16", "--decoder", "gru", "--decoder-hidden", "16", "--embedding-dim", "16",
                 "--attention-size", "16", "--batch-size", "16", "--max-steps", "3", "--val-every", "3",
                 "--checkpoint-every", "3", "--warmup-steps", "1", *QUIET]) == 0
    return out


BUILDERS = {"charlm": _charlm, "sentiment": _sentiment, "forecast": _forecast, "asr": _asr, "seq2seq": _seq2seq}


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> Dict[str, Path]:
    """{task: checkpoint directory} for every task, trained a few steps on tiny synthetic data."""
    root = tmp_path_factory.mktemp("serve-runs")
    return {task: build(root) for task, build in BUILDERS.items()}


LIMITS = ["--max-texts", "8", "--max-length", "400", "--max-audio-seconds", "2", "--max-body-mb", "1"]


@pytest.fixture(scope="session")
def server(tiny_runs, tmp_path_factory):
    """The real server on every tiny model, batching on (20 ms), small limits."""
    from rnnkit.serve.launch import serve_process

    log = tmp_path_factory.mktemp("serve-log") / "server.log"
    with serve_process({t: str(p) for t, p in tiny_runs.items()}, "--batch-wait-ms", "20", *LIMITS, log=log) as srv:
        yield srv
        assert "Traceback" not in srv.output() or "internal error" in srv.output()
