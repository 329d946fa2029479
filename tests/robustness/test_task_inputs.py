"""The bad-input suite for the task loaders: CSV/TSV tables (sentiment, forecasting) and
audio (speech). Same four checks as test_bad_inputs.py: exit 2, one line naming the input,
no traceback, and nothing written."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from tests.robustness.test_bad_inputs import check_bad_input

# ---- sentiment tables ------------------------------------------------------------------------

SENT = ["--hidden", "8", "--embedding-dim", "8", "--batch-size", "4", "--min-freq", "1", "--max-steps", "1",
        "--no-progress", "--logger", "none", "--threads", "1"]
GOOD_ROWS = "".join(f"a {'fine' if i % 2 else 'poor'} film number {i},{i % 2}\n" for i in range(12))

SENTIMENT_CASES = [
    ("misnamed text column", "review,label\n" + GOOD_ROWS, [], "no column 'text'"),
    ("missing label column", "text,stars\n" + GOOD_ROWS, [], "label"),
    ("empty text", "text,label\ngood,1\n\"\",0\n" + GOOD_ROWS, [], "empty text"),
    ("a single class", "text,label\n" + "".join(f"nice {i},1\n" for i in range(12)), [], "one class"),
    ("header only", "text,label\n", [], ""),
    ("empty file", "", [], ""),
    ("ragged rows", "text,label\ngood,1,extra,cols\n" + GOOD_ROWS, [], ""),
    ("header-less TSV", "".join(f"a {'fine' if i % 2 else 'poor'} film {i}\t{i % 2}\n" for i in range(12)), [], "header"),
]


@pytest.mark.parametrize("name,content,extra,needle", SENTIMENT_CASES, ids=[c[0] for c in SENTIMENT_CASES])
def test_bad_sentiment_table(tmp_path, capsys, name, content, extra, needle):
    src = tmp_path / ("data.tsv" if "TSV" in name else "data.csv")
    src.write_text(content, encoding="utf-8")
    argv = ["train", "sentiment", "--data", str(src), "--out", str(tmp_path / "out"), *SENT, *extra]
    check_bad_input(capsys, tmp_path, argv, [str(src.name)], needle)


def test_sentiment_table_in_latin1(tmp_path, capsys):
    src = tmp_path / "latin.csv"
    src.write_bytes(("text,label\n" + "".join(f"tr\u00e8s bon {i},{i % 2}\n" for i in range(12))).encode("latin-1"))
    argv = ["train", "sentiment", "--data", str(src), "--out", str(tmp_path / "out"), *SENT]
    check_bad_input(capsys, tmp_path, argv, [src.name], "utf-8")


def test_sentiment_binary_file(tmp_path, capsys):
    src = tmp_path / "data.csv"
    src.write_bytes(bytes(range(256)) * 4)
    argv = ["train", "sentiment", "--data", str(src), "--out", str(tmp_path / "out"), *SENT]
    check_bad_input(capsys, tmp_path, argv, [src.name])


# ---- sentiment word vectors (--embeddings) ---------------------------------------------------

VEC_WORDS = ["a", "fine", "poor", "film", "number"]


def _vectors(dim=8, words=VEC_WORDS, header=True) -> str:
    lines = [f"{len(words)} {dim}"] if header else []
    return "\n".join(lines + [f"{w} " + " ".join(f"0.{(i + j) % 10}" for j in range(dim)) for i, w in enumerate(words)]) + "\n"


EMBEDDING_CASES = [
    ("missing file", None, [], "no such file"),
    ("empty file", "", [], "empty"),
    ("wrong number of values", _vectors().replace("poor 0.2", "poor"), [], "values, expected 8"),
    ("a non-number", _vectors(header=False).replace("film 0.3", "film 0.3x"), [], "not a number"),
    ("dimension mismatch", _vectors(dim=3), [], "--embedding-dim is 8"),
    ("no vocabulary word found", _vectors(words=["zebra", "yak"]), [], "none of the"),
    ("a gensim pickle", "not read anyway", [], "never loads"),
    ("a char tokenizer", _vectors(), ["--tokenizer", "char"], "--tokenizer word"),
]


@pytest.mark.parametrize("name,content,extra,needle", EMBEDDING_CASES, ids=[c[0] for c in EMBEDDING_CASES])
def test_bad_sentiment_embeddings(tmp_path, capsys, name, content, extra, needle):
    data = tmp_path / "data.csv"
    data.write_text("text,label\n" + GOOD_ROWS, encoding="utf-8")
    vec = tmp_path / ("w2v.model" if "pickle" in name else "vectors.txt")
    if content is not None:
        vec.write_text(content, encoding="utf-8")
    argv = ["train", "sentiment", "--data", str(data), "--embeddings", str(vec), "--out", str(tmp_path / "out"),
            *SENT, *extra]
    check_bad_input(capsys, tmp_path, argv, [vec.name], needle)


# ---- forecasting tables ----------------------------------------------------------------------

FC = ["--time", "date", "--target", "temp", "--hidden", "4", "--lookback", "3", "--batch-size", "4",
      "--max-steps", "1", "--no-progress", "--logger", "none", "--threads", "1"]


def _series(n=40, **overrides):
    dates = [f"2021-01-{d:02d}" for d in range(1, 32)] + [f"2021-02-{d:02d}" for d in range(1, 29)]
    rows = {"date": dates[:n], "temp": [f"{10 + (i % 7) * 0.5:.1f}" for i in range(n)],
            "hum": [f"{50 + i % 5}" for i in range(n)]}
    rows.update(overrides)
    return "date,temp,hum\n" + "".join(f"{a},{b},{c}\n" for a, b, c in zip(rows["date"], rows["temp"], rows["hum"]))


FORECAST_CASES = [
    ("unparseable dates", lambda: _series(date=["yesterday"] * 40), [], "date"),
    ("non-numeric target", lambda: _series(temp=["warm"] * 40), [], "temp"),
    ("duplicate timestamps", lambda: _series(date=["2021-01-01"] * 2 + [f"2021-01-{d:02d}" for d in range(2, 32)]
                                             + [f"2021-02-{d:02d}" for d in range(1, 9)]), [], "duplicate"),
    ("all-NaN column", lambda: _series(temp=["NA"] * 40), [], "temp"),
    ("inf values", lambda: _series(temp=["inf"] + ["1.0"] * 39), [], "infinite"),
    ("series shorter than lookback + horizon", lambda: _series(n=3), [], ""),
    ("negative horizon", lambda: _series(), ["--horizon", "-1"], "--horizon"),
    ("zero lookback", lambda: _series(), ["--lookback", "0"], "--lookback"),
    ("target also a covariate", lambda: _series(), ["--covariates", "temp"], "temp"),
    ("constant column", lambda: _series(hum=["5"] * 40), ["--covariates", "hum"], "hum"),
    ("missing time column", lambda: _series().replace("date,", "day,", 1), [], "date"),
]


@pytest.mark.parametrize("name,make,extra,needle", FORECAST_CASES, ids=[c[0] for c in FORECAST_CASES])
def test_bad_forecast_table(tmp_path, capsys, name, make, extra, needle):
    src = tmp_path / "series.csv"
    src.write_text(make(), encoding="utf-8")
    args = list(FC)
    for i in range(0, len(extra), 2):  # the case's flags replace the defaults
        if extra[i] in args:
            j = args.index(extra[i])
            del args[j:j + 2]
    argv = ["train", "forecast", "--data", str(src), "--out", str(tmp_path / "out"), *args, *extra]
    names = {"--horizon": ["--horizon"], "--lookback": ["--lookback"], "--covariates": ["--covariate"]}.get(
        extra[0] if extra else "", [src.name])
    if name == "constant column":
        names = ["hum"]
    check_bad_input(capsys, tmp_path, argv, names, needle)


# ---- audio -----------------------------------------------------------------------------------

ASR = ["--hidden", "8", "--layers", "1", "--conv-channels", "2", "--n-mels", "16", "--batch-size", "2",
       "--max-steps", "1", "--no-progress", "--logger", "none", "--threads", "1"]


def _wav(path: Path, seconds=0.3, sr=8000) -> Path:
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr)
    return path


def _truncated(path: Path) -> Path:
    good = _wav(path).read_bytes()
    path.write_bytes(good[:60])
    return path


def _zero_length(path: Path) -> Path:
    header = b"RIFF" + struct.pack("<I", 36) + b"WAVE" + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
    path.write_bytes(header + b"data" + struct.pack("<I", 0))
    return path


AUDIO_CASES = [
    ("truncated WAV header", _truncated),
    ("zero-length audio", _zero_length),
    ("random bytes named .wav", lambda p: (p.write_bytes(np.random.default_rng(0).bytes(4000)), p)[1]),
    ("text named .wav", lambda p: (p.write_text("this is not audio\n" * 20), p)[1]),
]


@pytest.mark.parametrize("name,make", AUDIO_CASES, ids=[c[0] for c in AUDIO_CASES])
def test_bad_audio_in_a_manifest(tmp_path, capsys, name, make):
    d = tmp_path / "clips"
    d.mkdir()
    _wav(d / "a.wav")
    _wav(d / "b.wav")
    bad = make(d / "c.wav")
    (d / "manifest.csv").write_text("path,text\na.wav,one\nb.wav,two\nc.wav,three\n")
    argv = ["train", "asr", "--data", str(d / "manifest.csv"), "--out", str(tmp_path / "out"), *ASR]
    check_bad_input(capsys, tmp_path, argv, [bad.name])


def test_manifest_naming_a_missing_file(tmp_path, capsys):
    d = tmp_path / "clips"
    d.mkdir()
    _wav(d / "a.wav")
    (d / "manifest.csv").write_text("path,text\na.wav,one\ngone.wav,two\n")
    argv = ["train", "asr", "--data", str(d / "manifest.csv"), "--out", str(tmp_path / "out"), *ASR]
    check_bad_input(capsys, tmp_path, argv, ["gone.wav"])
