"""The command line: smoke runs on a tiny corpus, and every bad input from the issue.

Each bad input must give one line on stderr naming the file/option and the problem, exit
code 2, no traceback, and no half-written output.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from rnnkit import checkpoint as C
from rnnkit.cli.main import build_parser, main
from tests.util import tiny_train_args

RNNKIT = [sys.executable, "-m", "rnnkit.cli.main"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from tests.util import make_text

    d = tmp_path_factory.mktemp("cli")
    corpus = d / "corpus.txt"
    corpus.write_text(make_text(), encoding="utf-8")
    out = d / "run"
    assert main(tiny_train_args(corpus, out, "--max-steps", "80", "--lr", "2e-2", "--hidden", "48",
                                "--batch-size", "16", "--seq-len", "32", "--checkpoint-every", "40")) == 0
    return corpus, out


def _one_line_error(capsys, rc, *needles):
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err
    return err


def test_help_is_fast_and_documents_every_option():
    from dataclasses import fields

    from rnnkit.training.config import sections_for

    proc = subprocess.run(RNNKIT + ["train", "charlm", "--help"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 0
    for cls in sections_for("charlm").values():
        for f in fields(cls):
            if f.metadata.get("flag"):
                assert f.metadata["flag"] in proc.stdout
    code = "import sys, rnnkit.cli.main as m; m.build_parser(); print('torch' in sys.modules, 'lightning' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split()
    assert out == ["False", "False"], "rnnkit --help must not import torch or Lightning"


def test_sample_streams_text_and_is_repeatable(trained, capsys):
    _, out = trained
    assert main(["sample", str(out), "--prime", "KING:", "--length", "80", "--seed", "4"]) == 0
    a = capsys.readouterr().out
    assert a.startswith("KING:") and len(a.rstrip("\n")) >= 80
    assert main(["sample", str(out), "--prime", "KING:", "--length", "80", "--seed", "4"]) == 0
    assert capsys.readouterr().out == a
    assert main(["sample", str(out), "--length", "40", "--temperature", "0", "--engine", "torch"]) == 0
    t = capsys.readouterr().out
    assert main(["sample", str(out), "--length", "40", "--temperature", "0", "--engine", "numpy"]) == 0
    assert capsys.readouterr().out == t


def test_sample_never_imports_torch(trained):
    _, out = trained
    code = ("import sys, rnnkit.cli.main as m; rc = m.main(['sample', sys.argv[1], '--length', '20', '--seed', '1']);"
            "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_evaluate_json(trained, capsys):
    corpus, out = trained
    assert main(["evaluate", str(out), "--data", str(corpus), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    n = len(corpus.read_text())
    assert n - 1 - 2 * 8 <= r["characters"] <= n - 1  # every char predicted once, but stream starts/tail
    assert 0 < r["loss"] < 2.4 and abs(r["bits_per_char"] - r["loss"] / 0.6931471805599453) < 1e-9
    assert r["unknown_characters"] == 0


def test_evaluate_counts_characters_outside_the_vocabulary(trained, tmp_path, capsys):
    _, out = trained
    p = tmp_path / "x.txt"
    p.write_text("the king {is} dead\n", encoding="utf-8")
    assert main(["evaluate", str(out), "--data", str(p), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["unknown_characters"] == 2 and r["unknown"] == "{}"


# ---- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize("make,needle", [
    (lambda d: d / "missing.txt", "no such file"),
    (lambda d: (d / "empty.txt").write_bytes(b"") and None or d / "empty.txt", "empty corpus"),
    (lambda d: (d / "bin.txt").write_bytes(bytes(range(256))) and None or d / "bin.txt", "binary"),
    (lambda d: (d / "l1.txt").write_bytes("se\u00f1or".encode("latin-1") * 50) and None or d / "l1.txt", "not UTF-8"),
    (lambda d: (d / "short.txt").write_text("To be, or not") and None or d / "short.txt", "too short"),
])
def test_bad_corpus(tmp_path, capsys, make, needle):
    path = make(tmp_path)
    out = tmp_path / "out"
    rc = main(tiny_train_args(path, out, "--max-steps", "2"))
    _one_line_error(capsys, rc, str(path), needle)
    assert not C.has_checkpoint(out), "nothing half-written"


def test_out_already_holding_a_checkpoint(trained, capsys):
    corpus, out = trained
    before = (out / C.MODEL_FILE).read_bytes()
    rc = main(tiny_train_args(corpus, out, "--max-steps", "2"))
    _one_line_error(capsys, rc, str(out), "--resume", "--overwrite")
    assert (out / C.MODEL_FILE).read_bytes() == before


def test_unwritable_out(tiny_corpus, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = main(tiny_train_args(tiny_corpus, blocker / "sub", "--max-steps", "2"))
    _one_line_error(capsys, rc, "sub")


@pytest.mark.parametrize("flag,value,needle", [
    ("--length", "0", "--length"), ("--length", "-5", "--length"),
    ("--temperature", "-0.1", "--temperature"), ("--top-k", "0", "--top-k"),
    ("--top-p", "0", "--top-p"), ("--top-p", "1.01", "--top-p"),
])
def test_bad_sampling_options(trained, capsys, flag, value, needle):
    _, out = trained
    try:
        rc = main(["sample", str(out), flag, value])
    except SystemExit as e:  # refused by argparse (the ranges of rnnkit.limits)
        rc = e.code
    _one_line_error(capsys, rc, needle)


def test_prime_outside_vocabulary(trained, capsys):
    _, out = trained
    rc = main(["sample", str(out), "--prime", "KING@#"])
    _one_line_error(capsys, rc, "--prime", "@")


def test_corrupt_truncated_and_foreign_checkpoints(trained, tmp_path, capsys):
    import shutil

    _, out = trained
    bad = tmp_path / "bad"
    shutil.copytree(out, bad, ignore=shutil.ignore_patterns("checkpoints", "logs"))
    data = (bad / C.MODEL_FILE).read_bytes()
    (bad / C.MODEL_FILE).write_bytes(data[:100])
    _one_line_error(capsys, main(["sample", str(bad)]), str(bad), "sha256")
    (bad / C.CONFIG_FILE).write_text("{")
    _one_line_error(capsys, main(["sample", str(bad)]), "corrupt JSON")

    other = tmp_path / "other"
    shutil.copytree(out, other, ignore=shutil.ignore_patterns("checkpoints", "logs"))
    cfg = json.loads((other / C.CONFIG_FILE).read_text())
    cfg["task"] = "sentiment"
    (other / C.CONFIG_FILE).write_text(json.dumps(cfg))
    _one_line_error(capsys, main(["sample", str(other)]), "'sentiment' checkpoint", "expected 'charlm'")
    cfg["task"], cfg["format_version"] = "charlm", 99
    (other / C.CONFIG_FILE).write_text(json.dumps(cfg))
    _one_line_error(capsys, main(["evaluate", str(other)]), "format_version 99", "newer")

    pt = tmp_path / "model.pt"
    pt.write_bytes(pickle.dumps({"weights": [1, 2]}))
    _one_line_error(capsys, main(["sample", str(pt)]), "pickle")
    _one_line_error(capsys, main(["sample", str(tmp_path / "nope")]), "no such checkpoint")


def test_bad_config_values(tiny_corpus, tmp_path, capsys):
    rc = main(tiny_train_args(tiny_corpus, tmp_path / "o", "--max-steps", "2", "--dropout", "1.5"))
    _one_line_error(capsys, rc, "--dropout")
    y = tmp_path / "c.yaml"
    y.write_text("model:\n  hiden_size: 3\n")
    rc = main(tiny_train_args(tiny_corpus, tmp_path / "o", "--config", str(y)))
    _one_line_error(capsys, rc, str(y), "hiden_size")
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["train", "charlm", "--hidden", "many"])
    assert e.value.code == 2


def test_console_script_exit_code_and_no_traceback(tmp_path):
    proc = subprocess.run(RNNKIT + ["sample", str(tmp_path / "none")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("rnnkit: error:") and "Traceback" not in proc.stderr
