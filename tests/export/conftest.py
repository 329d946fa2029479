"""Export tests: tiny checkpoints of every task, trained a few steps through the CLI on each
task's test data (once per session), and helpers to make variants with random weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

Q = ["--no-progress", "--logger", "none", "--threads", "1"]


def _series_csv(path: Path) -> Path:
    dates = [f"2021-{m:02d}-{d:02d}" for m in (1, 3, 5, 7) for d in range(1, 29)]
    path.write_text("date,temp,hum\n" + "".join(
        f"{x},{10 + (i % 7) * 0.5 + 0.1 * (i % 3):.2f},{50 + i % 5}\n" for i, x in enumerate(dates)))
    return path


def train_all(root: Path) -> Dict[str, Path]:
    """charlm, sentiment, forecast, asr, seq2seq checkpoints (2-3 steps each, about 6 s)."""
    from rnnkit.cli.main import main
    from tests.fixtures.asr import write_digits
    from tests.fixtures.sentiment import synthetic_reviews, write_csv
    from tests.fixtures.seq2seq import toy_pairs
    from tests.util import make_text, tiny_train_args

    out: Dict[str, Path] = {}
    (root / "tiny.txt").write_text(make_text())
    out["charlm"] = root / "charlm"
    assert main(tiny_train_args(root / "tiny.txt", out["charlm"], "--max-steps", "3")) == 0
    write_csv(root / "reviews.csv", synthetic_reviews(200))
    out["sentiment"] = root / "sentiment"
    assert main(["train", "sentiment", "--data", str(root / "reviews.csv"), "--out", str(out["sentiment"]),
                 "--hidden", "8", "--embedding-dim", "8", "--batch-size", "4", "--min-freq", "1",
                 "--max-steps", "2", "--bidirectional", *Q]) == 0
    out["forecast"] = root / "forecast"
    assert main(["train", "forecast", "--data", str(_series_csv(root / "series.csv")), "--time", "date",
                 "--target", "temp", "--covariates", "hum", "--hidden", "4", "--lookback", "5", "--horizon", "3",
                 "--batch-size", "4", "--max-steps", "2", "--out", str(out["forecast"]), *Q]) == 0
    d = write_digits(root / "digits")
    out["asr"] = root / "asr"
    assert main(["train", "asr", "--data", str(d), "--out", str(out["asr"]), "--max-steps", "2", "--hidden", "8",
                 "--layers", "1", "--conv-channels", "2", "--n-mels", "16", "--batch-size", "4",
                 "--warmup-steps", "1", *Q]) == 0
    src, tgt = toy_pairs(300)
    (root / "train.en").write_text("\n".join(src) + "\n")
    (root / "train.de").write_text("\n".join(tgt) + "\n")
    out["seq2seq"] = root / "seq2seq"
    assert main(["train", "seq2seq", "--data", f"{root / 'train.en'}:{root / 'train.de'}", "--out",
                 str(out["seq2seq"]), "--vocab-size", "48", "--encoder", "gru", "--hidden", "16", "--decoder", "lstm",
                 "--decoder-hidden", "16", "--embedding-dim", "16", "--attention-size", "16", "--batch-size", "16",
                 "--max-steps", "3", "--input-feeding", "--lr", "1e-2", *Q]) == 0
    return out


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Dict[str, Path]:
    return train_all(tmp_path_factory.mktemp("export-ckpts"))


@pytest.fixture(scope="session")
def exported(trained, tmp_path_factory) -> Dict[str, Path]:
    """Each trained checkpoint exported through the CLI (self-check included)."""
    from rnnkit.cli.main import main

    root = tmp_path_factory.mktemp("exports")
    out = {}
    for task, ck in trained.items():
        out[task] = root / task
        assert main(["export", str(ck), "--format", "onnx", "--out", str(out[task])]) == 0
    return out


def variant(base: Path, target: Path, seed: int = 0, **model: Any) -> Path:
    """A checkpoint like ``base`` with ``model`` config overrides and random weights."""
    from rnnkit.export.onnx_export import random_variant

    return random_variant(base, target, seed, **model)
