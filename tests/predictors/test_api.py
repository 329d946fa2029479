"""`rnnkit.load(path)` for every task: the right predictor, the same results as the CLI, bad
arguments refused with one documented exception type, and no Lightning on the way."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rnnkit
from rnnkit.cli.main import main
from rnnkit.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def cli_out(capsys, argv) -> str:
    capsys.readouterr()
    assert main(argv) == 0
    return capsys.readouterr().out


def test_load_returns_each_tasks_predictor(tiny):
    from rnnkit import predictors as P

    want = {"charlm": P.CharLMPredictor, "sentiment": P.SentimentPredictor, "forecast": P.ForecastPredictor,
            "asr": P.AsrPredictor, "seq2seq": P.Seq2SeqPredictor}
    for task, path in tiny.items():
        m = rnnkit.load(path)
        assert type(m) is want[task] and m.task == task and m.config["task"] == task and m.path == path
        info = m.info()
        assert info["task"] == task and info["backend"] == "torch" and info["encoder"] and info["global_step"] > 0
        assert info["parameters"] == sum(p.numel() for mod in ([m.net.encoder, m.net.task] if task != "charlm"
                                                              else m.net.modules()) for p in mod.parameters())
    # a periodic checkpoint directory loads the same way
    step = sorted((tiny["charlm"] / "checkpoints").glob("step-*"))[-1]
    assert rnnkit.load(step).sample("KING", 20, temperature=0, seed=0) == rnnkit.load(tiny["charlm"]).sample(
        "KING", 20, temperature=0, seed=0)


def test_charlm_sample_stream_score_match_the_cli(tiny, capsys, tmp_path):
    m = rnnkit.load(tiny["charlm"])
    text = m.sample("KING:", length=80, temperature=0.7, top_k=5, seed=3)
    assert text.startswith("KING:") and len(text) == 85
    assert "".join(m.stream("KING:", length=80, temperature=0.7, top_k=5, seed=3)) == text
    out = cli_out(capsys, ["sample", str(tiny["charlm"]), "--prime", "KING:", "--length", "80", "--temperature",
                           "0.7", "--top-k", "5", "--seed", "3"])
    assert out == text + "\n"
    rows = [json.loads(x) for x in cli_out(capsys, ["sample", str(tiny["charlm"]), "--prime", "KING:", "--length",
                                                     "30", "--seed", "5", "--num-samples", "2", "--json"]).splitlines()]
    assert [r["seed"] for r in rows] == [5, 6]
    assert [r["text"] for r in rows] == [m.sample("KING:", 30, temperature=0.8, seed=s) for s in (5, 6)]
    # score == evaluate on the same text
    sample = tmp_path / "t.txt"
    sample.write_text("KING: the queen is dead.\nHAMLET: good night sweet prince.\n", encoding="utf-8")
    s = m.score(sample.read_text(encoding="utf-8"))
    r = json.loads(cli_out(capsys, ["evaluate", str(tiny["charlm"]), "--data", str(sample), "--json"]))
    assert s["bits_per_char"] == pytest.approx(r["bits_per_char"], rel=1e-12) and s["characters"] == r["characters"]
    assert s["nats_per_char"] == pytest.approx(s["bits_per_char"] * np.log(2))
    # the prime's unknown characters: named with the known ones, or dropped on request
    with pytest.raises(InputError, match="outside the model's vocabulary.*knows"):
        m.sample("Café — 1", 5)
    assert m.sample("KINGé", 5, unknown="drop", seed=0).startswith("KING") and "é" not in m.sample("KINGé", 5, unknown="drop")


def test_sentiment_predict_matches_the_cli_and_keeps_columns(tiny, capsys, tmp_path):
    m = rnnkit.load(tiny["sentiment"])
    texts = ["a superb , charming film", "the plot was tedious and dull", "fun"]
    res = m.predict(texts)
    assert [r["label"] for r in res[:2]] == ["pos", "neg"]
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-9 and r["probability"] == max(r["probabilities"].values())
               for r in res)
    one = m.predict(texts[0])  # a single string is a list of one (float32 batching: equal to 1e-6)
    assert len(one) == 1 and one[0]["label"] == res[0]["label"]
    assert one[0]["probability"] == pytest.approx(res[0]["probability"], abs=1e-6)
    cli = [json.loads(x) for x in cli_out(capsys, ["predict", str(tiny["sentiment"]), *texts, "--json"]).splitlines()]
    assert [(c["label"], c["probability"]) for c in cli] == [(r["label"], r["probability"]) for r in res]
    # a semicolon-separated file with an id column: sniffed, the id kept next to the predictions
    inp = tmp_path / "in.csv"
    inp.write_text("id;text\n7;a superb , charming film\n9;the plot was tedious and dull\n", encoding="utf-8")
    for ext in (".csv", ".tsv", ".jsonl", ".json"):
        dest = tmp_path / f"out{ext}"
        assert main(["predict", str(tiny["sentiment"]), "--input", str(inp), "--output", str(dest)]) == 0
        if ext == ".json":
            got = pd.DataFrame(json.loads(dest.read_text()))
        elif ext == ".jsonl":
            got = pd.read_json(dest, lines=True)
        else:
            got = pd.read_csv(dest, sep="," if ext == ".csv" else "\t")
        assert list(got["id"].astype(int)) == [7, 9] and list(got["label"]) == ["pos", "neg"]
        assert got["probability"].tolist() == pytest.approx([r["probability"] for r in res[:2]])
    # stdin
    old = sys.stdin
    sys.stdin = io.StringIO("a superb , charming film\n")
    try:
        out = cli_out(capsys, ["predict", str(tiny["sentiment"]), "--input", "-", "--json"])
    finally:
        sys.stdin = old
    assert json.loads(out)["label"] == "pos"
    # evaluate() is `rnnkit evaluate --json`
    r = json.loads(cli_out(capsys, ["evaluate", str(tiny["sentiment"]), "--json"]))
    e = m.evaluate()
    for k in ("accuracy", "macro_f1", "loss", "examples", "confusion_matrix"):
        assert e[k] == r[k]


def test_forecast_api_matches_the_cli(tiny, capsys, tmp_path):
    m = rnnkit.load(tiny["forecast"])
    df = m.forecast()
    assert list(df.columns[:6]) == ["series", "origin", "time", "step", "target", "forecast"]
    assert set(df["series"]) == {"A", "B"} and sorted(set(df["step"])) == [1, 2, 3]
    assert (df["lower"] <= df["upper"]).all()
    dest = tmp_path / "f.csv"
    assert main(["forecast", str(tiny["forecast"]), "--output", str(dest)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(dest), df, check_dtype=False)
    # a frame instead of the file, a shorter horizon, one series
    frame = pd.read_csv(m.config["data"]["spec"]["data"])
    one = m.forecast(frame, series="B", horizon=2)
    assert set(one["series"]) == {"B"} and one["step"].max() == 2
    pd.testing.assert_frame_equal(one.reset_index(drop=True),
                                  df[(df.series == "B") & (df.step <= 2)].reset_index(drop=True))
    with pytest.raises(InputError, match="horizon must be in \\[1, 3\\]"):
        m.forecast(horizon=5)
    bt = m.backtest()
    r = json.loads(cli_out(capsys, ["backtest", str(tiny["forecast"]), "--json"]))
    assert bt == r and set(bt["models"]) >= {"model", "naive", "drift"}
    assert m.evaluate() == r
    fig = m.plot()
    assert fig.axes and fig.axes[0].get_ylabel().startswith("temp")
    # backtest --output carries every baseline's predictions
    out = tmp_path / "bt.csv"
    assert main(["backtest", str(tiny["forecast"]), "--output", str(out), "--arima", "none"]) == 0
    assert {"actual", "model", "naive", "drift"} <= set(pd.read_csv(out).columns)


def test_asr_transcribe_matches_the_cli(tiny, capsys):
    import soundfile as sf

    m = rnnkit.load(tiny["asr"])
    wavs = sorted((tiny["asr"].parent / "digits").glob("*.wav"))[:3]
    one = m.transcribe(str(wavs[0]))
    assert set(one) == {"text", "words"}
    for w in one["words"]:
        assert set(w) == {"word", "start", "end", "confidence"} and 0 <= w["start"] <= w["end"]
        assert 0 < w["confidence"] <= 1
    samples, sr = sf.read(str(wavs[0]), dtype="float32")
    assert m.transcribe((samples, sr)) == one
    many = m.transcribe([str(w) for w in wavs], timestamps=False)
    assert [x["text"] for x in many] == [m.transcribe(str(w))["text"] for w in wavs]
    lines = cli_out(capsys, ["transcribe", str(tiny["asr"]), *map(str, wavs)]).splitlines()
    assert lines == [f"{w}\t{x['text']}" for w, x in zip(wavs, many)]
    # a folder is read as its audio files
    folder = cli_out(capsys, ["transcribe", str(tiny["asr"]), str(wavs[0].parent), "--json"]).splitlines()
    assert len(folder) == len(list(wavs[0].parent.glob("*.wav")))
    r = json.loads(cli_out(capsys, ["evaluate", str(tiny["asr"]), "--split", "val", "--json"]))
    assert m.evaluate(split="val") == r


def test_seq2seq_translate_matches_the_cli(tiny, capsys):
    m = rnnkit.load(tiny["seq2seq"])
    texts = ["the red dog runs .", "a small cat sleeps ."]
    got = m.translate(texts, beam=3)
    assert got == cli_out(capsys, ["translate", str(tiny["seq2seq"]), *texts, "--beam", "3"]).splitlines()
    assert m.translate(texts[0], beam=3) == got[:1]
    att = m.translate(texts, beam=1, attention=True)
    assert att[0]["translation"] == m.translate(texts[0], beam=1)[0]
    a = np.array(att[0]["attention"])
    n = len(att[0]["target_pieces"])  # one row per subword, and one for EOS unless cut at the length limit
    assert a.shape[1] == len(att[0]["source_pieces"]) and a.shape[0] in (n, n + 1)
    np.testing.assert_allclose(a.sum(1), 1, atol=1e-5)
    assert len(m.hypotheses(["the red dog runs ."] * 2, beam=1, max_len=2)[0].tokens) <= 2
    # a sentence translates the same alone and next to a longer one (per-sentence length limits)
    long = "the big old man eats . the small green bird sings . a red cat sleeps ."
    assert m.translate([texts[0], long], beam=3)[0] == m.translate(texts[0], beam=3)[0]
    # no n-gram repeats with --no-repeat-ngram
    for h in m.hypotheses([long], beam=3, no_repeat_ngram=2):
        grams = list(zip(h.tokens, h.tokens[1:]))
        assert len(grams) == len(set(grams))


def test_from_modules_equals_load(tiny):
    from rnnkit.predictors import SentimentPredictor

    m = rnnkit.load(tiny["sentiment"])
    again = SentimentPredictor.from_modules(m.config, m.net.encoder, m.net.task)
    texts = ["superb fun", "dull"]
    assert [r["probability"] for r in again.predict(texts)] == [r["probability"] for r in m.predict(texts)]


def test_loading_never_imports_lightning_and_import_rnnkit_stays_light(tiny):
    code = ("import sys, rnnkit\n"
            "assert 'torch' not in sys.modules, 'import rnnkit imported torch'\n"
            "paths = sys.argv[1:]\n"
            "m = rnnkit.load(paths[0]); m.sample('KING', 20, seed=0)\n"
            "assert 'torch' not in sys.modules, 'charlm sampling imported torch'\n"
            "rnnkit.load(paths[1]).predict(['superb fun'])\n"
            "rnnkit.load(paths[2]).forecast()\n"
            "rnnkit.load(paths[3]).transcribe(paths[5])\n"
            "rnnkit.load(paths[4]).translate(['the red dog runs .'])\n"
            "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('lightning', 'pytorch_lightning'))\n"
            "assert not bad, bad\n")
    wav = sorted((tiny["asr"].parent / "digits").glob("*.wav"))[0]
    args = [str(tiny[t]) for t in ("charlm", "sentiment", "forecast", "asr", "seq2seq")] + [str(wav)]
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=240,
                       env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
