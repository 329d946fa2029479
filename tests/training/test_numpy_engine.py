"""`rnnkit train charlm --engine numpy`: torch-free training in the shared checkpoint format."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from rnnkit import checkpoint as C
from rnnkit.cli.main import main
from tests.util import tiny_train_args


def _args(corpus, out, *extra):
    return tiny_train_args(corpus, out, "--engine", "numpy", "--dropout", "0.2", "--seed", "4", *extra)


def test_numpy_training_learns_and_resumes_bitwise(tiny_corpus, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(_args(tiny_corpus, a, "--max-steps", "12")) == 0
    assert main(_args(tiny_corpus, b, "--max-steps", "12", "--checkpoint-every", "5")) == 0
    # b again, from its step-10 checkpoint: the same weights as the uninterrupted run
    C.publish_top_level(b / "checkpoints" / "step-0000010", b)
    capsys.readouterr()
    assert main(_args(tiny_corpus, b, "--max-steps", "12", "--resume", str(b))) == 0
    assert "resumed from step 10" in capsys.readouterr().err
    wa, wb = C.load_checkpoint(a).weights, C.load_checkpoint(b).weights
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    meta = json.loads((a / C.TRAIN_META_FILE).read_text())
    assert meta["engine"] == "numpy" and meta["global_step"] == 12 and meta["carry"]


def test_numpy_loss_falls_below_the_unigram_entropy(tiny_corpus, tmp_path):
    from rnnkit.reference.charlm import unigram_entropy

    out = tmp_path / "run"
    assert main(_args(tiny_corpus, out, "--max-steps", "80", "--lr", "2e-2", "--hidden", "48",
                      "--batch-size", "16", "--seq-len", "32", "--dropout", "0", "--val-every", "1000")) == 0
    ck = C.load_checkpoint(out)
    text = tiny_corpus.read_text()
    vocab = ck.config["data"]["vocab"]
    h = unigram_entropy(np.array([vocab.index(c) for c in text]), len(vocab))
    assert ck.config["metrics"]["val_loss"] < h - 0.8, (ck.config["metrics"], h)


@pytest.mark.parametrize("first,second", [("numpy", "torch"), ("torch", "numpy")])
def test_a_run_continues_in_the_other_engine(tiny_corpus, tmp_path, capsys, first, second):
    out = tmp_path / "run"
    assert main(tiny_train_args(tiny_corpus, out, "--engine", first, "--max-steps", "6")) == 0
    before = C.load_checkpoint(out, with_train_state=True)
    capsys.readouterr()
    assert main(tiny_train_args(tiny_corpus, out, "--engine", second, "--max-steps", "9", "--resume", str(out))) == 0
    cap = capsys.readouterr()
    assert "resumed from step 6" in cap.err and f"continuing a {first}-engine run" in cap.err
    after = C.load_checkpoint(out, with_train_state=True)
    assert after.train_meta["engine"] == second and after.train_meta["global_step"] == 9
    assert any(not np.array_equal(before.weights[k], after.weights[k]) for k in before.weights)
    assert set(k for k in after.train_tensors if k.startswith("optim.")) >= {
        f"optim.{k}.exp_avg" for k in after.weights}


def test_numpy_training_never_imports_torch(tiny_corpus, tmp_path):
    out = tmp_path / "run"
    argv = _args(tiny_corpus, out, "--max-steps", "3")
    code = ("import sys, rnnkit.cli.main as m; rc = m.main(sys.argv[1:]);"
            "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert C.load_checkpoint(out).config["task"] == "charlm"
    # and the torch engine samples from it
    assert main(["sample", str(out), "--engine", "torch", "--length", "10", "--seed", "0"]) == 0
