"""Tiny real checkpoints of every task, trained for a few steps through the CLI on small
deterministic data (seconds each): what the predictor, export and server tests load."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

from tests.util import make_text

COMMON = ["--no-progress", "--logger", "none", "--threads", "1"]


def _charlm(d: Path) -> list:
    corpus = d / "corpus.txt"
    corpus.write_text(make_text(), encoding="utf-8")
    return ["train", "charlm", "--data", str(corpus), "--hidden", "16", "--layers", "2", "--embedding-dim", "8",
            "--seq-len", "16", "--batch-size", "4", "--val-every", "5", "--checkpoint-every", "10",
            "--warmup-steps", "2", "--max-steps", "10"]


def _sentiment(d: Path) -> list:
    from tests.fixtures.sentiment import synthetic_reviews, write_csv

    data = write_csv(d / "reviews.csv", [(t, "pos" if y else "neg") for t, y in synthetic_reviews(300)])
    return ["train", "sentiment", "--data", str(data), "--hidden", "16", "--embedding-dim", "16",
            "--batch-size", "16", "--min-freq", "1", "--val-every", "40", "--checkpoint-every", "80",
            "--warmup-steps", "5", "--lr", "1e-2", "--max-steps", "80"]


def _forecast(d: Path) -> list:
    from tests.fixtures.forecast import daily_frame, write

    data = write(daily_frame(n=160, groups=("A", "B")), d / "daily.csv")
    return ["train", "forecast", "--data", str(data), "--time", "date", "--target", "temp", "--group", "site",
            "--covariates", "humidity,wind", "--horizon", "3", "--head", "quantile", "--hidden", "8",
            "--lookback", "6", "--batch-size", "16", "--max-steps", "20", "--val-every", "10",
            "--checkpoint-every", "20", "--warmup-steps", "3"]


def _asr(d: Path) -> list:
    from tests.fixtures.asr import write_digits

    audio = write_digits(d / "digits")
    return ["train", "asr", "--data", str(audio), "--hidden", "8", "--layers", "1", "--conv-channels", "2",
            "--n-mels", "16", "--batch-size", "4", "--val-every", "2", "--checkpoint-every", "4",
            "--warmup-steps", "1", "--max-steps", "4"]


def _seq2seq(d: Path) -> list:
    from tests.fixtures.seq2seq import toy_pairs

    src, tgt = toy_pairs(300)
    s, t = d / "train.en", d / "train.de"
    s.write_text("".join(x + "\n" for x in src), encoding="utf-8")
    t.write_text("".join(x + "\n" for x in tgt), encoding="utf-8")
    return ["train", "seq2seq", "--data", f"{s}:{t}", "--vocab-size", "48", "--encoder", "gru", "--hidden", "16",
            "--decoder", "gru", "--decoder-hidden", "16", "--embedding-dim", "16", "--attention-size", "16",
            "--batch-size", "32", "--lr", "1e-2", "--warmup-steps", "5", "--val-every", "20",
            "--checkpoint-every", "20", "--max-steps", "20"]


RECIPES = {"charlm": _charlm, "sentiment": _sentiment, "forecast": _forecast, "asr": _asr, "seq2seq": _seq2seq}


def train_tiny(task: str, root: Path) -> Path:
    """Train a tiny ``task`` model under ``root`` and return its checkpoint directory."""
    from rnnkit.cli.main import main

    d = Path(root) / task
    d.mkdir(parents=True, exist_ok=True)
    out = d / "run"
    rc = main(RECIPES[task](d) + ["--out", str(out), *COMMON])
    assert rc == 0, f"training the tiny {task} model failed"
    return out


def train_all(root: Path) -> Dict[str, Path]:
    return {task: train_tiny(task, root) for task in RECIPES}
