"""Scale-out through Lightning DDP: 2 CPU processes (gloo) match one process with the same
global batch. Run as subprocesses: under pytest, strategy="ddp" would re-run pytest itself."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from rnnkit import checkpoint as C
from tests.util import make_text, tiny_train_args


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_process_ddp_matches_single_process(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(make_text(), encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}

    def run(out, *extra):
        args = tiny_train_args(corpus, out, "--max-steps", "8", "--dropout", "0", "--seed", "2",
                               "--accelerator", "cpu", "--threads", "1", "--val-every", "100", *extra)
        proc = subprocess.run([sys.executable, "-m", "rnnkit.cli.main", *args], env=env,
                              capture_output=True, text=True, timeout=240)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return C.load_checkpoint(out, with_train_state=True)

    # tiny_train_args uses --batch-size 4: one process with 4 streams == 2 processes with 2 each
    single = run(tmp_path / "single")
    ddp = run(tmp_path / "ddp", "--batch-size", "2", "--devices", "2", "--strategy", "ddp")
    assert ddp.train_meta["world_size"] == 2 and ddp.train_meta["global_step"] == 8
    for k, v in single.weights.items():
        np.testing.assert_allclose(ddp.weights[k], v, rtol=2e-4, atol=2e-5, err_msg=k)
    # the comparison has power: one process with only 2 streams ends elsewhere
    half = run(tmp_path / "half", "--batch-size", "2")
    gap = max(float(np.abs(half.weights[k] - single.weights[k]).max()) for k in single.weights)
    agree = max(float(np.abs(ddp.weights[k] - single.weights[k]).max()) for k in single.weights)
    assert gap > 100 * agree, (gap, agree)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_early_stopping_stops_every_ddp_rank_at_the_same_step(tmp_path):
    """--patience under DDP: a rank that stopped alone would leave the other waiting in its
    next gradient all-reduce (the subprocess would hang until its timeout)."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(make_text(), encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    out = tmp_path / "ddp"
    args = tiny_train_args(corpus, out, "--max-steps", "40", "--batch-size", "2", "--devices", "2",
                           "--strategy", "ddp", "--accelerator", "cpu", "--threads", "1", "--val-every", "5",
                           "--checkpoint-every", "100", "--patience", "1", "--min-delta", "100")
    proc = subprocess.run([sys.executable, "-m", "rnnkit.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[-1].startswith("done: step 10 (stopped early)"), proc.stdout
    meta = C.load_checkpoint(out, with_train_state=True).train_meta
    assert meta["world_size"] == 2 and meta["global_step"] == 10
    assert meta["early_stopping"]["bad_checks"] == 1 and meta["early_stopping"]["best_step"] == 5
