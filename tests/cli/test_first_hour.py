"""A new user's first hour, through the real CLI in fresh processes (issue #19): train a tiny
model of every task, then sample, evaluate, predict, forecast, backtest, transcribe and
translate, with the help pages and a few mistakes on the way. No output may hold a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def rnnkit(*args, ok=True, stdin=None, cwd=None):
    r = subprocess.run([sys.executable, "-m", "rnnkit.cli.main", *map(str, args)], capture_output=True, text=True,
                       timeout=300, input=stdin, cwd=cwd, env={**os.environ, "OMP_NUM_THREADS": "1"})
    both = r.stdout + r.stderr
    assert "Traceback" not in both, both[-3000:]
    if ok:
        assert r.returncode == 0, both[-2000:]
    else:
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, both[-2000:]
    return r


def test_first_hour(tiny, tmp_path):
    for verb in ("", "train", "sample", "evaluate", "predict", "forecast", "backtest", "transcribe", "translate"):
        rnnkit(*([verb] if verb else []), "--help")
    ck = tiny
    # charlm: sample, score, a prime with characters the model does not know
    r = rnnkit("sample", ck["charlm"], "--prime", "KING:", "--length", "40", "--seed", "1")
    assert r.stdout.startswith("KING:")
    r = rnnkit("sample", ck["charlm"], "--prime", "Café — 1", ok=False)
    assert "knows" in r.stderr
    rnnkit("sample", ck["charlm"], "--prime", "KINGé", "--drop-unknown", "--length", "5")
    rnnkit("evaluate", ck["charlm"], "--json")
    r = rnnkit("evaluate", ck["charlm"], "--baseline", "--beam", "5", ok=False)
    assert "'charlm' checkpoint" in r.stderr
    # sentiment
    r = rnnkit("predict", ck["sentiment"], "superb fun", "--json")
    assert '"label"' in r.stdout
    rnnkit("predict", ck["sentiment"], "--input", "-", stdin="superb fun\ndull\n")
    rnnkit("evaluate", ck["sentiment"], "--baseline")
    # forecast
    out = tmp_path / "f.csv"
    rnnkit("forecast", ck["forecast"], "--output", out, "--plot", tmp_path / "f.png")
    assert out.read_text().startswith("series,origin,time,step,target,forecast")
    r = rnnkit("backtest", ck["forecast"], "--arima", "none")
    assert "verdict: the model" in r.stdout and "best baseline" in r.stdout
    rnnkit("backtest", ck["forecast"], "--arima", "99,99,99", ok=False)
    # asr
    wav = sorted((ck["asr"].parent / "digits").glob("*.wav"))[0]
    rnnkit("transcribe", ck["asr"], wav, "--timestamps", "--json")
    rnnkit("transcribe", ck["asr"], wav.parent)
    # seq2seq
    r = rnnkit("translate", ck["seq2seq"], "the red dog runs .", "--beam", "3", "--max-len", "12",
               "--no-repeat-ngram", "2")
    assert r.stdout.strip()
    r = rnnkit("evaluate", ck["seq2seq"], "--data", f"{ck['seq2seq'].parent / 'train.en'}:"
               f"{ck['seq2seq'].parent / 'train.de'}", "--beam", "2")
    assert "BLEU" in r.stdout and "nrefs:1" in r.stdout  # sacrebleu's signature next to the score
    # mistakes a first hour makes
    rnnkit("predict", ck["charlm"], "text", ok=False)
    rnnkit("sample", tmp_path, ok=False)
    rnnkit("predict", ck["sentiment"], "x", "--output", tmp_path / "out.xlsx", ok=False)
