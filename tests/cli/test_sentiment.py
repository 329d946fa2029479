"""`rnnkit train sentiment` / `evaluate` / `predict` end to end on a tiny synthetic table, exact
resume, and every bad input of the issue (one line, exit 2, no traceback)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from rnnkit import checkpoint as C
from rnnkit.cli.main import main

from tests.training.test_train import _interrupted_run

from tests.fixtures.sentiment import synthetic_reviews, write_csv


def train_args(data: Path, out: Path, *extra: str):
    return ["train", "sentiment", "--data", str(data), "--out", str(out), "--hidden", "16", "--embedding-dim", "16",
            "--batch-size", "16", "--min-freq", "1", "--val-every", "50", "--checkpoint-every", "100",
            "--warmup-steps", "5", "--lr", "1e-2", "--no-progress", "--logger", "none", "--threads", "1", *extra]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("sent")
    data = write_csv(d / "reviews.csv", [(t, "pos" if y else "neg") for t, y in synthetic_reviews(300)])
    out = d / "run"
    assert main(train_args(data, out, "--max-steps", "100")) == 0
    return data, out


def _one_line_error(capsys, rc, *needles):
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err
    return err


def test_train_learns_and_saves_vocabulary_and_classes(trained):
    data, out = trained
    cfg = C.read_config(out, expect_task=["sentiment"])
    assert cfg["data"]["classes"] == ["neg", "pos"]
    assert cfg["data"]["vocab"]["tokens"][:2] == ["<pad>", "<unk>"] and "superb" in cfg["data"]["vocab"]["tokens"]
    assert cfg["data"]["sizes"] == {"train": 240, "val": 30, "test": 30}
    assert cfg["model"]["bidirectional"] is True and cfg["model"]["pooling"] == "max"
    assert cfg["metrics"]["val_accuracy"] >= 0.9  # the sentiment words decide the label


def test_evaluate_json_reports_all_metrics_and_baseline(trained, capsys):
    data, out = trained
    assert main(["evaluate", str(out), "--json", "--baseline", "--threads", "1"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["split"] == "test" and r["examples"] == 30 and r["classes"] == ["neg", "pos"]
    assert r["accuracy"] >= 0.9 and 0 <= r["macro_f1"] <= 1 and r["roc_auc"] >= 0.9
    assert np.sum(r["confusion_matrix"]) == 30
    assert r["baseline"]["accuracy"] >= 0.9 and r["baseline"]["C"] in (0.5, 2.0, 8.0)
    # another file is scored whole; integer-like and display labels are the same labels
    other = write_csv(data.parent / "other.csv", [("superb and charming", "pos"), ("dull and tedious", "neg")])
    assert main(["evaluate", str(out), "--data", str(other), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["split"] == "all" and r["examples"] == 2 and r["accuracy"] == 1.0


def test_predict_texts_and_files(trained, capsys, tmp_path):
    _, out = trained
    assert main(["predict", str(out), "a superb , charming film", "the plot was tedious and dull", "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["label"] for x in lines] == ["pos", "neg"]
    assert all(0.5 < x["probability"] <= 1 and abs(sum(x["probabilities"].values()) - 1) < 1e-9 for x in lines)
    txt = tmp_path / "in.txt"
    txt.write_text("brilliant fun\nawful\n", encoding="utf-8")
    dest = tmp_path / "preds.csv"
    assert main(["predict", str(out), "--input", str(txt), "--output", str(dest)]) == 0
    rows = list(csv.DictReader(dest.open(encoding="utf-8")))
    assert [r["label"] for r in rows] == ["pos", "neg"] and set(rows[0]) == {"text", "label", "probability", "p_neg", "p_pos"}
    assert float(rows[0]["p_pos"]) == pytest.approx(float(rows[0]["probability"]))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_resume_is_exact(tmp_path):
    data = write_csv(tmp_path / "r.csv", synthetic_reviews(120))
    assert main(train_args(data, tmp_path / "full", "--max-steps", "14", "--checkpoint-every", "7")) == 0
    _interrupted_run(train_args(data, tmp_path / "half", "--max-steps", "14", "--checkpoint-every", "7"), stop_at=8)
    assert main(train_args(data, tmp_path / "half", "--max-steps", "14", "--checkpoint-every", "7",
                           "--resume", str(tmp_path / "half"))) == 0
    a = C.load_checkpoint(tmp_path / "full").weights
    b = C.load_checkpoint(tmp_path / "half").weights
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


# ---------------------------------------------------------------------------------------
# bad input


def test_bad_training_data(tmp_path, capsys):
    out = tmp_path / "o"
    renamed = write_csv(tmp_path / "renamed.csv", synthetic_reviews(30), ("review", "label"))
    _one_line_error(capsys, main(train_args(renamed, out, "--max-steps", "1")), "no column 'text'", "review, label")
    _one_line_error(capsys, main(train_args(renamed, out, "--max-steps", "1", "--text-col", "review",
                                            "--label-col", "stars")), "no column 'stars' for --label-col")
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\ngood,1\n\"\",0\nbad,0\n", encoding="utf-8")
    _one_line_error(capsys, main(train_args(empty, out, "--max-steps", "1")), "empty text", "line 3")
    single = write_csv(tmp_path / "single.csv", [(f"text {i}", 1) for i in range(20)])
    _one_line_error(capsys, main(train_args(single, out, "--max-steps", "1")), "only one class")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(("text,label\n" + "\n".join(f"tr\u00e8s bon {i},{i % 2}" for i in range(20)) + "\n").encode("latin-1"))
    _one_line_error(capsys, main(train_args(latin, out, "--max-steps", "1")), "not valid utf-8", "--encoding")
    headerless = write_csv(tmp_path / "nohead.tsv", synthetic_reviews(30), header=None, sep="\t")
    _one_line_error(capsys, main(train_args(headerless, out, "--max-steps", "1")), "header-less", "--no-header")
    _one_line_error(capsys, main(train_args(tmp_path / "missing.csv", out, "--max-steps", "1")), "no such file")
    with pytest.raises(SystemExit) as e:
        main(train_args(headerless, out, "--max-steps", "1", "--pooling", "sum"))
    _one_line_error(capsys, e.value.code, "--pooling", "invalid choice")
    assert not C.has_checkpoint(out)


def test_bad_evaluation_and_prediction_input(trained, tmp_path, capsys):
    data, out = trained
    unseen = write_csv(tmp_path / "unseen.csv", [("superb", "pos"), ("meh", "neutral"), ("dull", "1")])
    _one_line_error(capsys, main(["evaluate", str(out), "--data", str(unseen)]),
                    "'1', 'neutral' were never seen in training", "'neg', 'pos'")
    _one_line_error(capsys, main(["predict", str(out)]), "give texts")
    _one_line_error(capsys, main(["predict", str(out), "fine", "  "]), "TEXT argument 2 is empty")
    blank = tmp_path / "blank.txt"
    blank.write_text("good\n\nbad\n", encoding="utf-8")
    _one_line_error(capsys, main(["predict", str(out), "--input", str(blank)]), "empty line", "line 2")
    cols = write_csv(tmp_path / "cols.csv", [("x", 1), ("y", 0)], ("review", "label"))
    _one_line_error(capsys, main(["predict", str(out), "--input", str(cols)]), "no column 'text'")
    # a checkpoint of another task is refused by predict
    cfg_path = out / "config.json"
    other = tmp_path / "charlm-ckpt"
    other.mkdir()
    for f in out.iterdir():
        if f.is_file():
            (other / f.name).write_bytes(f.read_bytes())
    cfg = json.loads(cfg_path.read_text())
    cfg["data"]["data"] = "rt-polarity"  # as if trained on Rotten Tomatoes sentences
    (other / "config.json").write_text(json.dumps(cfg))
    _one_line_error(capsys, main(["evaluate", str(other), "--data", "sst2"]), "394 of SST-2's 872")
    cfg["task"] = "charlm"
    (other / "config.json").write_text(json.dumps(cfg))
    _one_line_error(capsys, main(["predict", str(other), "fine"]), "charlm", "sentiment")


def test_diagnose_gradients_of_a_sentiment_checkpoint(trained, tmp_path, capsys):
    """Issue 19: `diagnose gradients CKPT` worked for charlm only; every recurrent task is
    probed on its own validation split with its training loss."""
    _, out = trained
    assert main(["diagnose", "gradients", str(out), "--out", str(tmp_path / "g"), "--threads", "1"]) == 0
    res = json.loads((tmp_path / "g" / "gradients.json").read_text())
    s = res["setup"]
    assert s["task"] == "sentiment" and s["data"] == "sentiment validation split"
    assert s["loss"] == "the sentiment task's training loss" and s["lag"] == min(60, s["seq_len"] - 1)
    assert res["layers"] and all(len(r["norms"]) == s["seq_len"] and r["last"] >= 0 for r in res["layers"].values())
    assert math.isfinite(res["loss"])
    assert "wrote " in capsys.readouterr().out
