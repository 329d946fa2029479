"""The run directory (training/rundir.py), shared by both engines: one writer (an OS lock),
--overwrite's stash, no success without a checkpoint, no empty --out after a failure, disk
full, a double Ctrl-C and a resume command that runs."""

from __future__ import annotations

import errno
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rnnkit import checkpoint as C
from rnnkit.cli.main import main
from rnnkit.training.rundir import LOCK_FILE, RunDir, is_rank_zero
from tests.util import tiny_train_args

ENGINES = ["numpy", "torch"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
SRC = str(Path(__file__).resolve().parents[2] / "src")


def _args(corpus, out, engine, *extra):
    return tiny_train_args(corpus, out, "--engine", engine, "--seed", "3", *extra)


def _at_step(monkeypatch, engine, action):
    """Call ``action(step, params_or_module)`` after every training step of ``engine``."""
    if engine == "numpy":
        from rnnkit.training.numpy_engine import NumpyRun

        original = NumpyRun.train_one

        def train_one(self, *a):
            result = original(self, *a)
            action(self.step, self.params)
            return result

        monkeypatch.setattr(NumpyRun, "train_one", train_one)
    else:
        from rnnkit.training.callbacks import RnnkitCheckpoint

        original = RnnkitCheckpoint.on_train_batch_end

        def on_train_batch_end(self, trainer, module, *a):
            action(module.total_steps, module)
            return original(self, trainer, module, *a)

        monkeypatch.setattr(RnnkitCheckpoint, "on_train_batch_end", on_train_batch_end)


def _poison(step, holder):
    """Make one weight NaN (NumPy params dict or torch module)."""
    if isinstance(holder, dict):
        holder["task.head.bias"][0] = np.nan
    else:
        import torch

        with torch.no_grad():
            holder.task.head.bias[0] = float("nan")


# -- issue 18: the NumPy engine shares the run directory with the torch engine ---------------
def test_numpy_overwrite_leaves_no_stash_behind(tiny_corpus, tmp_path):
    out = tmp_path / "ck"
    assert main(_args(tiny_corpus, out, "numpy", "--max-steps", "3")) == 0
    assert main(_args(tiny_corpus, out, "numpy", "--max-steps", "4", "--overwrite")) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(C.CHECKPOINT_ENTRIES)  # no .overwritten-*, no lock
    assert C.load_checkpoint(out, with_train_state=True).train_meta["global_step"] == 4


def test_numpy_engine_saves_the_corpus_fingerprint_and_checks_it_on_resume(tiny_corpus, tmp_path, capsys):
    numpy_out, torch_out = tmp_path / "n", tmp_path / "t"
    assert main(_args(tiny_corpus, numpy_out, "numpy", "--max-steps", "3")) == 0
    assert main(_args(tiny_corpus, torch_out, "torch", "--max-steps", "3")) == 0
    data_n = C.read_config(numpy_out)["data"]
    data_t = C.read_config(torch_out)["data"]
    assert data_n == data_t and len(data_n["ids_sha256"]) == 64  # the same data section from both engines
    tiny_corpus.write_text(tiny_corpus.read_text() + "the king is dead\n", encoding="utf-8")
    capsys.readouterr()
    assert main(_args(tiny_corpus, numpy_out, "numpy", "--max-steps", "6", "--resume", str(numpy_out))) == 2
    assert "not the corpus this run was trained on" in capsys.readouterr().err


# -- issue 20.1: one writer per run directory ------------------------------------------------
HOLD = """
import sys, time
from pathlib import Path
from rnnkit.training.rundir import RunDir
run = RunDir(sys.argv[1], overwrite=True)
with run.claim():
    tmp = Path(sys.argv[1]) / "checkpoints" / ".tmp-step-0000009-live"
    tmp.mkdir(parents=True)
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_writer_is_refused_naming_the_pid_and_leaves_the_live_run_alone(tiny_corpus, tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], env={**ENV, "PYTHONPATH": SRC},
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for engine in ENGINES:
            rc = main(_args(tiny_corpus, out, engine, "--max-steps", "3", "--overwrite"))
            err = capsys.readouterr().err.strip().splitlines()
            assert rc == 2 and len(err) == 1, err
            assert err[0] == (f"rnnkit: error: {out}: another rnnkit run (PID {holder.pid}) is writing to this "
                              f"--out; wait for it to end, or choose another --out")
            # the refused run cleaned nothing: the live run's temp dir is still there
            assert (out / "checkpoints" / ".tmp-step-0000009-live").is_dir()
        assert (out / LOCK_FILE).read_text().strip() == str(holder.pid)
    finally:
        holder.kill()
        holder.wait()


def test_two_concurrent_runs_on_one_out(tiny_corpus, tmp_path):
    out = tmp_path / "same"
    cli = [sys.executable, "-m", "rnnkit.cli.main"]
    first = subprocess.Popen(cli + _args(tiny_corpus, out, "numpy", "--max-steps", "100000", "--checkpoint-every", "5"),
                             env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and first.poll() is None and not C.list_step_dirs(out):
            time.sleep(0.05)
        second = subprocess.run(cli + _args(tiny_corpus, out, "numpy", "--max-steps", "20", "--overwrite",
                                            "--seed", "8"), env=ENV, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stderr
        assert f"another rnnkit run (PID {first.pid})" in second.stderr and "Traceback" not in second.stderr
        assert first.poll() is None, "the first run goes on"
    finally:
        first.send_signal(signal.SIGTERM)
        stdout, stderr = first.communicate(timeout=60)
    assert first.returncode == 0 and "stopped by SIGTERM" in stdout, stderr
    meta = C.load_checkpoint(out, with_train_state=True).train_meta
    assert f"at step {meta['global_step']};" in stdout  # the checkpoint is the first run's
    assert not list(out.glob(".overwritten-*")) and not (out / LOCK_FILE).exists()


def test_a_lock_left_by_a_killed_run_is_taken_over_with_a_note(tiny_corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_args(tiny_corpus, out, "numpy", "--max-steps", "3")) == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / LOCK_FILE).write_text(f"{dead.pid}\n")  # what SIGKILL leaves: the file, no lock on it
    capsys.readouterr()
    assert main(_args(tiny_corpus, out, "numpy", "--max-steps", "5", "--resume", str(out))) == 0
    err = capsys.readouterr().err
    assert f"the run with PID {dead.pid} ended without releasing its lock" in err
    assert not (out / LOCK_FILE).exists()


def test_only_rank_zero_claims_the_directory(tmp_path, monkeypatch):
    assert is_rank_zero()
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert not is_rank_zero()
    run = RunDir(str(tmp_path / "out"))
    with run.claim(primary=False):
        assert run.save(1, {"w": np.zeros(2, np.float32)}, {"task": "charlm"}, {}, {}) is False
    assert not (tmp_path / "out").exists()  # no directory, no lock, nothing written


# -- issue 20.4: no success without a checkpoint, no empty --out after a failure ----------------
@pytest.mark.parametrize("engine", ENGINES)
def test_a_run_that_ends_without_a_valid_checkpoint_fails_and_leaves_no_out(tiny_corpus, tmp_path, monkeypatch,
                                                                            capsys, engine):
    _at_step(monkeypatch, engine, _poison)
    out = tmp_path / "new" / "run"
    rc = main(_args(tiny_corpus, out, engine, "--max-steps", "4", "--max-bad-steps", "100"))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and "Traceback" not in "\n".join(err)
    assert err[-1] == (f"rnnkit: error: training ended at step 4 with weights that are not finite (task.head.bias); "
                       f"no checkpoint was written for it (nothing is saved in {out}); lower the learning rate "
                       f"(--lr) or the weight decay")
    assert not (tmp_path / "new").exists()  # neither --out nor the parent it created


@pytest.mark.parametrize("engine", ENGINES)
def test_a_diverged_run_leaves_no_empty_out(tiny_corpus, tmp_path, capsys, engine):
    out = tmp_path / "run"
    rc = main(_args(tiny_corpus, out, engine, "--max-steps", "30", "--lr", "1e30", "--max-bad-steps", "2"))
    assert rc == 1 and "training diverged" in capsys.readouterr().err
    assert not out.exists()


def test_a_failed_run_in_an_existing_empty_out_keeps_the_folder_but_leaves_nothing_in_it(tiny_corpus, tmp_path,
                                                                                         monkeypatch):
    _at_step(monkeypatch, "numpy", _poison)
    out = tmp_path / "mine"
    out.mkdir()
    assert main(_args(tiny_corpus, out, "numpy", "--max-steps", "2")) == 1
    assert out.is_dir() and list(out.iterdir()) == []


# -- issue 20.7: disk full -----------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
def test_disk_full_is_one_line_and_the_previous_checkpoint_survives(tiny_corpus, tmp_path, monkeypatch, capsys,
                                                                    engine):
    out = tmp_path / "run"
    original = C._save_tensors
    calls = {"n": 0}

    def save_tensors(path, tensors):
        calls["n"] += 1
        if calls["n"] > 2:  # the first checkpoint (weights + train state) fits, the second does not
            with open(path, "wb") as f:
                f.write(b"\0" * 100)
            raise OSError(errno.ENOSPC, "No space left on device")
        original(path, tensors)

    monkeypatch.setattr(C, "_save_tensors", save_tensors)
    rc = main(_args(tiny_corpus, out, engine, "--max-steps", "9", "--checkpoint-every", "3"))
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("rnnkit:")]
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith(f"rnnkit: error: {out}: disk full while writing the checkpoint of step 6: it needs about ")
    assert "MB" in err[0] and "the previous checkpoint (step 3) is intact" in err[0]
    assert C.load_checkpoint(out, with_train_state=True).train_meta["global_step"] == 3
    assert [d.name for d in C.list_step_dirs(out)] == ["step-0000003"]
    assert not list(out.rglob(".tmp-*")) and not (out / LOCK_FILE).exists()


@pytest.fixture
def small_tmpfs(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    try:
        ok = os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                                                  capture_output=True).returncode == 0
    except OSError:
        ok = False
    if not ok:
        pytest.skip("cannot mount a tmpfs here (needs root and mount)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_disk_full_on_a_real_small_filesystem(tiny_corpus, small_tmpfs, monkeypatch, capsys):
    out = small_tmpfs / "run"
    from rnnkit.training.rundir import RunDir as R

    original = R.save

    def save(self, step, *a):
        ok = original(self, step, *a)
        if step == 3:  # leave about 20 kB: less than one checkpoint of this model
            free = os.statvfs(small_tmpfs).f_bavail * os.statvfs(small_tmpfs).f_frsize
            with open(small_tmpfs / "filler", "wb") as f:
                f.write(b"\0" * max(0, free - 20_000))
        return ok

    monkeypatch.setattr(R, "save", save)
    rc = main(_args(tiny_corpus, out, "numpy", "--max-steps", "9", "--checkpoint-every", "3", "--hidden", "64"))
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("rnnkit:")]
    assert rc == 2 and len(err) == 1 and "disk full while writing the checkpoint of step 6" in err[0], err
    assert "the previous checkpoint (step 3) is intact" in err[0]
    assert C.load_checkpoint(out, with_train_state=True).train_meta["global_step"] == 3
    (small_tmpfs / "filler").unlink()
    assert main(_args(tiny_corpus, out, "numpy", "--max-steps", "9", "--checkpoint-every", "3", "--hidden", "64",
                      "--resume", str(out))) == 0
    assert C.load_checkpoint(out, with_train_state=True).train_meta["global_step"] == 9


# -- issue 20.8: Ctrl-C ----------------------------------------------------------------------
def _interrupt_at(monkeypatch, engine, step, times):
    def action(now, _):
        if now == step:
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)

    _at_step(monkeypatch, engine, action)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_second_ctrl_c_stops_without_saving_and_names_the_last_saved_step(tiny_corpus, tmp_path, monkeypatch,
                                                                            capsys, engine):
    _interrupt_at(monkeypatch, engine, 5, times=2)
    out = tmp_path / "run"
    rc = main(_args(tiny_corpus, out, engine, "--max-steps", "50", "--checkpoint-every", "3"))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 130 and "Traceback" not in "\n".join(err)
    assert err[-1] == (f"rnnkit: error: stopped at once by a second interrupt, without saving step 5; the last "
                       f"checkpoint in {out} is step 3; continue with: rnnkit train charlm --resume {out} "
                       f"--max-steps 50" + (" --engine numpy" if engine == "numpy" else ""))
    assert C.load_checkpoint(out, with_train_state=True).train_meta["global_step"] == 3


@pytest.mark.parametrize("engine", ENGINES)
def test_the_resume_command_printed_after_a_stop_runs(tiny_corpus, tmp_path, monkeypatch, capsys, engine):
    _interrupt_at(monkeypatch, engine, 4, times=1)
    out = tmp_path / "run"
    config = tmp_path / "run.yaml"
    config.write_text("run:\n  checkpoint_every: 2\n", encoding="utf-8")
    assert main(_args(tiny_corpus, out, engine, "--max-steps", "7", "--config", str(config))) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    stopped = int(line.split(" at step ")[1].split(";")[0])  # the step after the signal (torch: the next one)
    assert line.startswith(f"stopped by SIGINT at step {stopped}; checkpoint saved in {out}; continue with: ")
    assert stopped in (4, 5)
    command = shlex.split(line.split("continue with: ")[1])
    assert command[:5] == ["rnnkit", "train", "charlm", "--resume", str(out)] and "--config" in command
    monkeypatch.undo()
    assert main(command[1:]) == 0
    assert f"resumed from step {stopped}" in capsys.readouterr().err  # chatter goes to stderr
    ck = C.load_checkpoint(out, with_train_state=True)
    assert ck.train_meta["global_step"] == 7 and ck.train_meta["engine"] == engine
    assert json.loads((out / C.CONFIG_FILE).read_text())["global_step"] == 7


def test_the_stash_of_a_killed_overwrite_run_is_put_back(tiny_corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_args(tiny_corpus, out, "numpy", "--max-steps", "3")) == 0
    before = (out / C.MODEL_FILE).read_bytes()
    stash = out / ".overwritten-99999"  # what SIGKILL leaves between --overwrite's stash and its first save
    stash.mkdir()
    for name in C.CHECKPOINT_ENTRIES:
        os.replace(out / name, stash / name)
    capsys.readouterr()
    assert main(_args(tiny_corpus, out, "numpy", "--max-steps", "3")) == 2  # neither --resume nor --overwrite
    assert "already holds a checkpoint (put back from an --overwrite run that was killed)" in capsys.readouterr().err
    assert (out / C.MODEL_FILE).read_bytes() == before and not stash.exists()
    assert main(_args(tiny_corpus, out, "numpy", "--max-steps", "5", "--resume", str(out))) == 0
    assert C.load_checkpoint(out, with_train_state=True).train_meta["global_step"] == 5


def test_a_refused_second_run_never_removes_the_directory_of_the_first(tmp_path):
    out = tmp_path / "new"
    first, second = RunDir(str(out)), RunDir(str(out))  # both validated while --out did not exist
    with first.claim():
        with pytest.raises(Exception, match="another rnnkit run"):
            with second.claim():
                pass
        assert out.is_dir() and (out / LOCK_FILE).exists()
