"""Crash safety: SIGKILL at random moments, SIGINT/SIGTERM, non-finite losses and gradients."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rnnkit import checkpoint as C
from rnnkit.cli.main import main
from tests.util import make_text, tiny_train_args

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def _args(corpus, out, *extra, steps=120):
    return tiny_train_args(corpus, out, "--max-steps", str(steps), "--checkpoint-every", "2", "--dropout", "0.2",
                           "--seed", "5", "--threads", "1", "--val-every", "25", *extra)


def _cli(*args):
    return [sys.executable, "-m", "rnnkit.cli.main", *args]


def _weights(path):
    return C.load_checkpoint(path).weights


def _same(a, b):
    return all(np.array_equal(a[k], b[k]) for k in a) and a.keys() == b.keys()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("reliability")
    corpus = d / "corpus.txt"
    corpus.write_text(make_text(), encoding="utf-8")
    assert main(_args(corpus, d / "ref")) == 0
    return corpus, _weights(d / "ref")


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_is_bitwise_identical(reference, tmp_path):
    corpus, ref = reference
    rng = random.Random(1234)
    out = tmp_path / "run"
    kills = 0
    cmd = _cli(*_args(corpus, out))
    for attempt in range(3):
        seen = {d.name for d in C.list_step_dirs(out)}
        proc = subprocess.Popen(cmd if attempt == 0 else _cli(*_args(corpus, out, "--resume", str(out))),
                                env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # wait until this process trains (it wrote a new checkpoint), then kill at a random moment:
        # mid-step, mid-validation or in the middle of writing a checkpoint
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None and not ({d.name for d in C.list_step_dirs(out)} - seen):
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.4))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
    assert kills >= 1, "the run finished before it could be killed; make it longer"
    done = subprocess.run(_cli(*_args(corpus, out, "--resume", str(out))), env=ENV, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "resumed from step" in done.stderr and "resumed" not in done.stdout  # chatter on stderr
    assert _same(_weights(out), ref), "resumed weights differ from the uninterrupted run"
    assert not [p for p in out.rglob(".tmp-*")], "temporary files cleaned up"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigint_and_sigterm_save_a_checkpoint_and_exit_cleanly(reference, tmp_path, sig):
    corpus, _ = reference
    out = tmp_path / "run"
    args = _args(corpus, out, "--checkpoint-every", "50", steps=100000)
    proc = subprocess.Popen(_cli(*args), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None and not C.list_step_dirs(out):
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert f"stopped by {signal.Signals(sig).name}" in stdout, stdout + stderr
    assert "Traceback" not in stderr
    import re

    step = C.load_checkpoint(out, with_train_state=True).train_meta["global_step"]
    stopped_at = int(re.search(r"at step (\d+)", stdout).group(1))
    assert step == stopped_at and 50 <= step < 100000, "saved at the step where it stopped"
    assert main(_args(corpus, out, "--resume", str(out), steps=step + 3)) == 0
    assert C.load_checkpoint(out, with_train_state=True).train_meta["global_step"] == step + 3


def _poison(monkeypatch, bad_calls):
    """Make CharLMTask.loss return NaN on the given (1-based) training calls."""
    import torch

    from rnnkit.tasks.charlm import CharLMTask

    original = CharLMTask.loss
    calls = {"n": 0}

    def loss(self, y, batch):
        value, metrics = original(self, y, batch)
        if self.training:
            calls["n"] += 1
            if calls["n"] in bad_calls:
                value = value * torch.tensor(float("nan"))
        return value, metrics

    monkeypatch.setattr(CharLMTask, "loss", loss)


def test_non_finite_loss_skips_the_step_and_training_goes_on(tiny_corpus, tmp_path, monkeypatch, capsys):
    _poison(monkeypatch, {3, 4, 9})
    out = tmp_path / "run"
    assert main(tiny_train_args(tiny_corpus, out, "--max-steps", "12")) == 0
    err = capsys.readouterr().err
    assert "step 3: non-finite loss; update skipped" in err and "step 9" in err
    ck = C.load_checkpoint(out, with_train_state=True)
    assert ck.train_meta["global_step"] == 12
    assert all(np.isfinite(v).all() for v in ck.weights.values())


def test_non_finite_gradient_is_skipped(tiny_corpus, tmp_path, monkeypatch, capsys):
    import torch

    from rnnkit.training.module import SequenceModule

    original = SequenceModule.on_before_optimizer_step
    calls = {"n": 0}

    def poisoned(self, optimizer):
        calls["n"] += 1
        if calls["n"] == 2:
            next(p for p in self.parameters() if p.grad is not None).grad[0].fill_(float("inf"))
        return original(self, optimizer)

    monkeypatch.setattr(SequenceModule, "on_before_optimizer_step", poisoned)
    out = tmp_path / "run"
    assert main(tiny_train_args(tiny_corpus, out, "--max-steps", "5")) == 0
    assert "step 2: non-finite gradient; update skipped" in capsys.readouterr().err
    assert all(np.isfinite(v).all() for v in C.load_checkpoint(out).weights.values())
    del torch


def test_divergence_stops_with_a_clear_message_and_no_bad_checkpoint(tiny_corpus, tmp_path, monkeypatch, capsys):
    _poison(monkeypatch, set(range(5, 100)))
    out = tmp_path / "run"
    rc = main(tiny_train_args(tiny_corpus, out, "--max-steps", "30", "--max-bad-steps", "4", "--checkpoint-every", "2"))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert err[-1].startswith("rnnkit: error: training diverged at step 8: non-finite loss for 4 consecutive steps")
    assert "--lr" in err[-1] and "Traceback" not in "\n".join(err)
    ck = C.load_checkpoint(out, with_train_state=True)  # the last good checkpoint survives
    assert ck.train_meta["global_step"] <= 7
    assert all(np.isfinite(v).all() for v in ck.weights.values())


def test_overwrite_puts_the_old_checkpoint_back_when_the_new_run_fails(reference, tmp_path, monkeypatch, capsys):
    corpus, _ = reference
    out = tmp_path / "run"
    assert main(tiny_train_args(corpus, out, "--max-steps", "3")) == 0
    before = (out / C.MODEL_FILE).read_bytes()
    _poison(monkeypatch, set(range(1, 100)))
    rc = main(tiny_train_args(corpus, out, "--max-steps", "30", "--overwrite", "--max-bad-steps", "2"))
    assert rc == 1 and "diverged" in capsys.readouterr().err
    assert (out / C.MODEL_FILE).read_bytes() == before
    assert C.load_checkpoint(out, with_train_state=True).train_meta["global_step"] == 3
    assert not list(out.glob(".overwritten-*"))


def test_overwrite_with_keep_best_puts_the_old_checkpoint_back_when_the_new_run_fails(reference, tmp_path,
                                                                                       monkeypatch, capsys):
    # the new run writes checkpoints/best/ at its first validation, before any periodic checkpoint
    corpus, _ = reference
    out = tmp_path / "run"
    assert main(tiny_train_args(corpus, out, "--max-steps", "3", "--keep-best", "--val-every", "1")) == 0
    before, old_best = (out / C.MODEL_FILE).read_bytes(), (out / "checkpoints" / "best" / C.MODEL_FILE).read_bytes()
    _poison(monkeypatch, set(range(2, 100)))
    rc = main(tiny_train_args(corpus, out, "--max-steps", "30", "--overwrite", "--keep-best", "--val-every", "1",
                              "--checkpoint-every", "100", "--max-bad-steps", "2"))
    err = capsys.readouterr().err
    assert rc == 1 and "diverged" in err and "Traceback" not in err
    assert (out / C.MODEL_FILE).read_bytes() == before
    assert (out / "checkpoints" / "best" / C.MODEL_FILE).read_bytes() == old_best
    assert C.load_checkpoint(out, with_train_state=True).train_meta["global_step"] == 3
    assert not list(out.glob(".overwritten-*"))


def test_bad_lightning_options_fail_before_anything_is_written(reference, tmp_path, capsys):
    corpus, _ = reference
    out = tmp_path / "run"
    assert main(tiny_train_args(corpus, out, "--max-steps", "3")) == 0
    before = (out / C.MODEL_FILE).read_bytes()
    rc = main(tiny_train_args(corpus, out, "--max-steps", "3", "--overwrite", "--accelerator", "gpu"))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "--accelerator gpu" in err, err
    assert (out / C.MODEL_FILE).read_bytes() == before


def test_numpy_engine_stops_cleanly_on_sigterm(reference, tmp_path):
    corpus, _ = reference
    out = tmp_path / "run"
    args = _args(corpus, out, "--engine", "numpy", "--checkpoint-every", "20", steps=100000)
    proc = subprocess.Popen(_cli(*args), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None and not C.list_step_dirs(out):
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "stopped by SIGTERM" in stdout, stderr
    meta = C.load_checkpoint(out, with_train_state=True).train_meta
    assert meta["engine"] == "numpy" and meta["global_step"] > 20
