"""#20: a Ctrl-C while `rnnkit train` starts up (importing torch and Lightning, reading the data)
is never lost. It used to be swallowed inside an import in some windows, and the run trained
to the end with exit 0. Now it stops the run before --out is created (exit 130, one line); a
second Ctrl-C stops at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.util import make_text

pytestmark = pytest.mark.slow


def _start(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(make_text(), encoding="utf-8")
    return subprocess.Popen([sys.executable, "-m", "rnnkit.cli.main", "train", "charlm", "--data", str(corpus),
                             "--out", str(tmp_path / "out"), "--hidden", "16", "--layers", "1", "--max-steps", "5000",
                             "--no-progress", "--logger", "none", "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.parametrize("delay", [0.3, 0.8, 1.5, 2.2])
def test_sigint_at_startup_stops_before_anything_is_written(tmp_path, delay):
    p = _start(tmp_path)
    time.sleep(delay)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=180)
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    if p.returncode == 0:  # the machine was fast: training had begun, so the graceful stop saved a step
        assert "stopped by SIGINT at step" in out and (tmp_path / "out" / "config.json").exists()
        return
    assert p.returncode == 130, err
    assert lines[-1] in ("rnnkit: interrupted",
                         "rnnkit: error: stopped by SIGINT before training started; nothing was written"), err
    assert not (tmp_path / "out").exists()


def test_two_sigints_at_startup_stop_at_once(tmp_path):
    p = _start(tmp_path)
    time.sleep(0.8)
    p.send_signal(signal.SIGINT)
    time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=180)
    assert p.returncode == 130 and "Traceback" not in err and err.strip().splitlines()[-1] == "rnnkit: interrupted"
    assert not (tmp_path / "out").exists()
