"""`rnnkit train seq2seq`, `rnnkit translate`, `rnnkit evaluate` on a toy language pair,
and every bad input of the issue (one line, exit 2, no traceback)."""

from __future__ import annotations

import json

import pytest

from rnnkit import checkpoint as C
from rnnkit.cli.main import main

from tests.fixtures.seq2seq import toy_pairs


def train_args(src, tgt, out, *extra):
    return ["train", "seq2seq", "--data", f"{src}:{tgt}", "--out", str(out), "--vocab-size", "48",
            "--encoder", "gru", "--hidden", "32", "--decoder", "gru", "--decoder-hidden", "48",
            "--embedding-dim", "32", "--attention-size", "32", "--dropout", "0.0", "--batch-size", "32",
            "--lr", "1e-2", "--warmup-steps", "10", "--val-every", "50", "--checkpoint-every", "50",
            "--label-smoothing", "0.0", "--no-progress", "--logger", "none", "--threads", "1", *extra]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("s2s")
    src, tgt = toy_pairs(600)
    s, t = d / "train.en", d / "train.de"
    s.write_text("\n".join(src) + "\n", encoding="utf-8")
    t.write_text("\n".join(tgt) + "\n", encoding="utf-8")
    vs, vt = toy_pairs(50, seed=1)
    val = d / "val.tsv"
    val.write_text("".join(f"{a}\t{b}\n" for a, b in zip(vs, vt)), encoding="utf-8")
    out = d / "run"
    assert main(train_args(s, t, out, "--max-steps", "150", "--val-data", str(val))) == 0
    return d, out, val


def test_training_learns_the_toy_language(trained, capsys):
    d, out, val = trained
    config = json.loads((out / "config.json").read_text())
    assert config["task"] == "seq2seq" and config["global_step"] == 150
    assert config["metrics"]["val_bleu"] > 60  # greedy BLEU on held-out toy pairs
    assert config["data"]["src_vocab"] and config["data"]["shared_vocab"] is True
    capsys.readouterr()
    assert main(["evaluate", str(out), "--data", str(val), "--json", "--beam", "3"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["sentences"] == 50 and result["decoding"] == "beam 3"
    assert result["bleu"] > 60 and 0 <= result["chrf"] <= 100


def test_translate_arguments_file_and_attention_plot(trained, capsys, tmp_path):
    d, out, _ = trained
    capsys.readouterr()
    assert main(["translate", str(out), "the red dog runs .", "a small cat sleeps ."]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["der hund rote rennt .", "ein katze kleine schlaeft ."]
    inp = tmp_path / "in.txt"
    inp.write_text("the old man eats .\n\na green bird sings .\n", encoding="utf-8")
    dest, plot = tmp_path / "out.txt", tmp_path / "att.png"
    assert main(["translate", str(out), "--input", str(inp), "--output", str(dest), "--beam", "4",
                 "--attention-plot", str(plot)]) == 0
    assert dest.read_text(encoding="utf-8").split("\n") == ["der mann alte isst .", "", "ein vogel gruene singt .", ""]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the same through stdin, as JSON lines with the inputs beside the translations
    import io as stdio
    import sys
    old = sys.stdin
    sys.stdin = stdio.StringIO("the old man eats .\n")
    try:
        assert main(["translate", str(out), "--input", "-", "--beam", "4", "--json"]) == 0
    finally:
        sys.stdin = old
    assert json.loads(capsys.readouterr().out) == {"text": "the old man eats .", "translation": "der mann alte isst ."}
    # an output format is never guessed
    _one_line_error(capsys, main(["translate", str(out), "a", "--output", str(tmp_path / "out.de")]),
                    "--output format unknown", "'.de'")


def _one_line_error(capsys, rc, *needles):
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    for n in needles:
        assert n in err, err


def test_bad_parallel_files(tmp_path, capsys):
    s, t = tmp_path / "a.en", tmp_path / "a.de"
    s.write_text("one\ntwo\nthree\n", encoding="utf-8")
    t.write_text("eins\nzwei\n", encoding="utf-8")
    out = tmp_path / "run"
    _one_line_error(capsys, main(train_args(s, t, out, "--max-steps", "2")), "line 3 has no partner")
    t.write_text("eins\n\ndrei\n", encoding="utf-8")
    _one_line_error(capsys, main(train_args(s, t, out, "--max-steps", "2")), "a.de: line 2 is empty")
    assert not C.has_checkpoint(out)


def test_translate_bad_inputs(trained, capsys, tmp_path):
    _, out, _ = trained
    _one_line_error(capsys, main(["translate", str(out), "  "]), "empty sentence")
    _one_line_error(capsys, main(["translate", str(out)]), "nothing to translate")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    _one_line_error(capsys, main(["translate", str(out), "--input", str(empty)]), "empty.txt: empty (nothing to read)")
    blank = tmp_path / "blank.txt"
    blank.write_text("  \n \n", encoding="utf-8")  # lines, but no text in any of them
    _one_line_error(capsys, main(["translate", str(out), "--input", str(blank)]), "empty (nothing to read)")
    with pytest.raises(SystemExit) as e:  # argparse's own one-line error
        main(["translate", str(out), "x", "--beam", "0"])
    _one_line_error(capsys, e.value.code, "--beam must be >= 1")


def test_checkpoint_of_another_task_is_refused(tmp_path, capsys):
    import numpy as np

    other = tmp_path / "lm"
    C.write_checkpoint_dir(other, {"w": np.zeros(2, np.float32)}, {"task": "charlm", "model": {}, "data": {}}, {}, {})
    rc = main(["translate", str(other), "a dog ."])  # evaluate takes any task; translate only seq2seq
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "charlm" in err and "seq2seq" in err, err


@pytest.mark.slow
def test_resume_is_exact_with_a_teacher_forcing_schedule(tmp_path):
    from rnnkit.checkpoint import load_checkpoint

    src, tgt = toy_pairs(200)
    s, t = tmp_path / "a.en", tmp_path / "a.de"
    s.write_text("\n".join(src) + "\n", encoding="utf-8")
    t.write_text("\n".join(tgt) + "\n", encoding="utf-8")
    extra = ("--teacher-forcing-end", "0.5", "--teacher-forcing-steps", "10", "--dropout", "0.2",
             "--bleu-sentences", "4")
    assert main(train_args(s, t, tmp_path / "one", "--max-steps", "12", *extra)) == 0
    assert main(train_args(s, t, tmp_path / "two", "--max-steps", "6", *extra)) == 0
    assert main(["train", "seq2seq", "--resume", str(tmp_path / "two"), "--max-steps", "12",
                 "--no-progress", "--logger", "none", "--threads", "1"]) == 0
    a, b = load_checkpoint(tmp_path / "one"), load_checkpoint(tmp_path / "two")
    assert a.weights["task.tf_step"].item() == 12
    for k in a.weights:
        assert (a.weights[k] == b.weights[k]).all(), k


def test_diagnose_gradients_of_a_seq2seq_checkpoint(trained, tmp_path):
    _, out, _ = trained
    assert main(["diagnose", "gradients", str(out), "--out", str(tmp_path / "g"), "--threads", "1"]) == 0
    res = json.loads((tmp_path / "g" / "gradients.json").read_text())
    assert res["setup"]["task"] == "seq2seq" and res["setup"]["loss"] == "the seq2seq task's training loss"
    assert res["layers"] and all(len(r["norms"]) == res["setup"]["seq_len"] for r in res["layers"].values())
