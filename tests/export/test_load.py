"""`rnnkit.load(EXPORT_DIR)`: the same predictor API as the checkpoint, running onnxruntime,
with the same answers (probabilities, scores, forecasts within 1e-4; identical greedy
samples, transcripts and translations); the CLI verbs take an export directory too."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import rnnkit
from rnnkit.cli.main import main
from rnnkit.errors import CheckpointError

TOL = 1e-4


def test_load_gives_onnx_backed_predictors(trained, exported):
    for task, d in exported.items():
        m = rnnkit.load(d)
        assert m.task == task and m.backend == "onnxruntime" and m.path == d
        assert rnnkit.load(trained[task]).backend == "torch"
        assert m.info()["encoder"] == rnnkit.load(trained[task]).info()["encoder"]


def test_load_expect_refuses_another_task(exported):
    from rnnkit.predictors import load

    with pytest.raises(CheckpointError, match="'sentiment'.*expected 'charlm'"):
        load(exported["sentiment"], expect=["charlm"])


def test_charlm_same_scores_and_greedy_samples(trained, exported):
    a, b = rnnkit.load(trained["charlm"]), rnnkit.load(exported["charlm"])
    text = (trained["charlm"].parent / "tiny.txt").read_text()[:2000]
    sa, sb = a.score(text), b.score(text)
    assert sa["characters"] == sb["characters"] and abs(sa["nats_per_char"] - sb["nats_per_char"]) <= TOL
    kw = dict(prime="KING:\n", length=80, temperature=0.0)
    assert a.sample(**kw) == b.sample(**kw)
    assert "".join(b.stream(**kw)) == b.sample(**kw)
    assert a.sample(prime="The ", length=60, temperature=0.8, seed=3) == b.sample(prime="The ", length=60, temperature=0.8, seed=3)


def test_sentiment_same_probabilities(trained, exported):
    from tests.fixtures.sentiment import synthetic_reviews

    texts = [t for t, _ in synthetic_reviews(30, seed=11)]
    pa, pb = rnnkit.load(trained["sentiment"]).predict(texts), rnnkit.load(exported["sentiment"]).predict(texts)
    assert [r["label"] for r in pa] == [r["label"] for r in pb]
    assert max(abs(x["probability"] - y["probability"]) for x, y in zip(pa, pb)) <= TOL


def test_forecast_same_frame_and_backtest(trained, exported):
    a, b = rnnkit.load(trained["forecast"]), rnnkit.load(exported["forecast"])
    fa, fb = a.forecast(), b.forecast()
    assert list(fa.columns) == list(fb.columns) and len(fa) == len(fb) > 1
    num = fa.select_dtypes("number").columns
    assert np.abs(fa[num].to_numpy() - fb[num].to_numpy()).max() <= TOL
    pd.testing.assert_frame_equal(fa.drop(columns=num), fb.drop(columns=num))
    ba, bb = a.backtest(), b.backtest()
    assert ba.keys() == bb.keys()


def test_forecast_autoregressive_rollout_matches(trained, tmp_path):
    from rnnkit.export.onnx_export import export_onnx

    ck = tmp_path / "ar"
    assert main(["train", "forecast", "--data", str(trained["forecast"].parent / "series.csv"), "--time", "date",
                 "--target", "temp", "--hidden", "4", "--lookback", "5", "--horizon", "3", "--batch-size", "4",
                 "--max-steps", "2", "--multistep", "autoregressive", "--out", str(ck), "--no-progress",
                 "--logger", "none", "--threads", "1"]) == 0
    export_onnx(ck, tmp_path / "ar-onnx")
    a, b = rnnkit.load(ck), rnnkit.load(tmp_path / "ar-onnx")
    assert b.net.autoregressive
    fa, fb = a.forecast(), b.forecast()
    num = fa.select_dtypes("number").columns
    assert len(fa) == 3 and np.abs(fa[num].to_numpy() - fb[num].to_numpy()).max() <= TOL


def test_asr_same_transcripts(trained, exported):
    wavs = sorted(str(p) for p in (trained["asr"].parent / "digits").glob("*.wav"))[:6]
    ta, tb = rnnkit.load(trained["asr"]).transcribe(wavs), rnnkit.load(exported["asr"]).transcribe(wavs)
    assert [t["text"] for t in ta] == [t["text"] for t in tb]
    for x, y in zip(ta, tb):
        assert [w["word"] for w in x["words"]] == [w["word"] for w in y["words"]]


def test_seq2seq_same_translations(trained, exported):
    from tests.fixtures.seq2seq import toy_pairs

    src, _ = toy_pairs(10, seed=2)
    a, b = rnnkit.load(trained["seq2seq"]), rnnkit.load(exported["seq2seq"])
    assert a.translate(src, beam=1) == b.translate(src, beam=1)
    assert a.translate(src, beam=4) == b.translate(src, beam=4)


def test_cli_verbs_run_an_export(trained, exported, capsys):
    capsys.readouterr()
    assert main(["predict", str(exported["sentiment"]), "a great and moving film"]) == 0
    onnx_out = capsys.readouterr().out
    assert main(["predict", str(trained["sentiment"]), "a great and moving film"]) == 0
    assert capsys.readouterr().out == onnx_out
    assert main(["sample", str(exported["charlm"]), "--prime", "KING:", "--length", "40", "--seed", "1"]) == 0
    onnx_out = capsys.readouterr().out
    assert main(["sample", str(trained["charlm"]), "--prime", "KING:", "--length", "40", "--seed", "1"]) == 0
    assert capsys.readouterr().out == onnx_out


def test_cli_on_a_corrupt_export_is_one_line(exported, tmp_path, capsys):
    import shutil

    from tests.robustness.test_bad_inputs import check_bad_input

    d = tmp_path / "e"
    shutil.copytree(exported["sentiment"], d)
    (d / "model.onnx").write_bytes((d / "model.onnx").read_bytes()[:200])
    check_bad_input(capsys, tmp_path, ["predict", str(d), "some text"], ["model.onnx"], "sha256")
    check_bad_input(capsys, tmp_path, ["sample", str(exported["sentiment"]), "--length", "5"], ["sentiment"], "charlm")
