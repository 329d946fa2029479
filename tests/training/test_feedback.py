"""What a training run says while it runs: progress on stderr with a total, the time left and
the task's unit, plain log lines without a bar, the warm-up warning, and early stopping
(``--patience``) in both engines, resumed and composed with ``--keep-best``."""

from __future__ import annotations

import json
import math
import re

import pytest

from rnnkit import checkpoint as C
from rnnkit.cli.main import main
from rnnkit.training.progress import Budget, Patience, log_line, warmup_warning
from tests.util import tiny_train_args

LINE = re.compile(r"^step (\d+)/(\d+)  loss \d+\.\d{4}(  val_loss \d+\.\d{4}  val_bpc \d+\.\d{4})?  [\d,]+ tokens/s  "
                  r"\d+:\d\d:\d\d left$")


# -- the pieces (torch-free) ---------------------------------------------------------------
def test_the_budget_ends_at_whichever_limit_comes_first():
    steps_only = Budget(max_steps=100, max_minutes=None, start_step=20, now=0.0)
    assert steps_only.final_step(20, 0.0) == 100 and steps_only.seconds_left(20, 0.0) is None
    assert steps_only.rate(40, 10.0) == 2.0  # steps of this process only (a resumed run started at 20)
    assert steps_only.seconds_left(40, 10.0) == pytest.approx(30.0)  # 60 steps at 2/s
    time_only = Budget(max_steps=None, max_minutes=1.0, start_step=0, now=0.0)
    assert time_only.final_step(0, 0.0) is None
    assert time_only.final_step(20, 10.0) == 20 + 2 * 50 and time_only.seconds_left(20, 10.0) == pytest.approx(50.0)
    both = Budget(max_steps=1000, max_minutes=1.0, start_step=0, now=0.0)
    assert both.final_step(20, 10.0) == 120 and both.seconds_left(20, 10.0) == pytest.approx(50.0)  # time first
    both = Budget(max_steps=50, max_minutes=1.0, start_step=0, now=0.0)
    assert both.final_step(20, 10.0) == 50 and both.seconds_left(20, 10.0) == pytest.approx(15.0)  # steps first


def test_log_line_format():
    line = log_line(40, 200, 2.12345, {"val_loss": 2.5}, 12345.6, "windows", 83.4)
    assert line == "step 40/200  loss 2.1235  val_loss 2.5000  12,346 windows/s  0:01:23 left"
    assert log_line(3, None, None, {}, None, "texts", None) == "step 3  ? left"


def test_warmup_warning_only_when_the_warmup_outlasts_the_run():
    msg = warmup_warning(100, 40, 0)
    assert msg.startswith("rnnkit: warning: ") and "--warmup-steps 100" in msg and "40 steps" in msg
    assert "40% of --lr" in msg and "(e.g. 4)" in msg
    assert warmup_warning(100, 100, 0) is None and warmup_warning(10, 40, 0) is None
    assert warmup_warning(100, 40, 100) is None  # a resumed run past its warm-up
    assert warmup_warning(100, None, 0) is None and warmup_warning(0, 5, 0) is None


def test_patience_counts_checks_without_an_improvement_beyond_min_delta():
    p = Patience(patience=2, min_delta=0.1)
    assert not p.update(1.0, 5) and (p.best, p.best_step, p.bad_checks) == (1.0, 5, 0)
    assert not p.update(0.95, 10) and p.bad_checks == 1  # better, but by less than min_delta
    assert not p.update(0.85, 15) and (p.best, p.bad_checks) == (0.85, 0)
    assert not p.update(float("nan"), 20) and p.bad_checks == 1
    assert p.update(0.9, 25) and p.bad_checks == 2
    again = Patience(patience=2, min_delta=0.1)
    again.restore(json.loads(json.dumps(p.state())))
    assert (again.best, again.best_step, again.bad_checks) == (0.85, 15, 2)
    fresh = Patience(3)
    fresh.restore(Patience(3).state())  # nothing validated yet: best stays +inf
    assert math.isinf(fresh.best)


def test_every_task_declares_its_speed_unit():
    from rnnkit.tasks.asr import ASRTask
    from rnnkit.tasks.charlm import CharLMTask
    from rnnkit.tasks.forecast import ForecastTask
    from rnnkit.tasks.sentiment import SentimentTask
    from rnnkit.tasks.seq2seq import Seq2SeqTask

    units = {cls.name: cls.rate_unit for cls in (CharLMTask, SentimentTask, ForecastTask, ASRTask, Seq2SeqTask)}
    assert units == {"charlm": "tokens", "sentiment": "texts", "forecast": "windows", "asr": "utterances",
                     "seq2seq": "sentences"}


# -- the torch engine ----------------------------------------------------------------------
def _split(capsys):
    cap = capsys.readouterr()
    return cap.out.splitlines(), cap.err


def test_progress_bar_goes_to_stderr_with_a_total_and_the_time_left(tiny_corpus, tmp_path, capsys, monkeypatch):
    from rnnkit.training import feedback

    monkeypatch.setattr(feedback, "stderr_is_terminal", lambda: True)
    args = [a for a in tiny_train_args(tiny_corpus, tmp_path / "run", "--max-steps", "30") if a != "--no-progress"]
    assert main(args) == 0
    out, err = _split(capsys)
    assert len(out) == 1 and out[0].startswith("done: step 30, checkpoint ")  # stdout: the result only
    bars = [b for b in err.replace("\r", "\n").splitlines() if b.startswith("train:")]
    assert any(re.search(r"\| 30/30 \[\d\d:\d\d<\d\d:\d\d, [\d.]+step/s, .*tokens/s=", b) for b in bars), bars[-3:]
    assert any(re.search(r"\| 10/30 \[\d\d:\d\d<\d\d:\d\d", b) for b in bars), bars  # a total and an ETA at once
    assert "Epoch" not in err and "v_num" not in err


def test_without_a_bar_one_plain_line_every_n_steps(tiny_corpus, tmp_path, capsys):
    assert main(tiny_train_args(tiny_corpus, tmp_path / "run", "--max-steps", "20", "--log-every", "5",
                                "--val-every", "10")) == 0
    out, err = _split(capsys)
    assert len(out) == 1 and out[0].startswith("done: step 20")
    lines = [line for line in err.splitlines() if line.startswith("step ")]
    assert [LINE.match(line).group(1, 2) for line in lines] == [("5", "20"), ("10", "20"), ("15", "20"), ("20", "20")], err
    assert "val_loss" not in lines[0] and "val_loss" in lines[1]  # step 10's line waits for step 10's validation


def test_log_every_0_is_silent_and_a_max_time_run_still_shows_its_end(tiny_corpus, tmp_path, capsys):
    assert main(tiny_train_args(tiny_corpus, tmp_path / "a", "--max-steps", "6", "--log-every", "0")) == 0
    assert "step " not in _split(capsys)[1]
    assert main(tiny_train_args(tiny_corpus, tmp_path / "b", "--max-time", "0.05", "--log-every", "5")) == 0
    lines = [line for line in _split(capsys)[1].splitlines() if line.startswith("step ")]
    assert lines and all(re.match(r"step \d+/\d+  ", line) for line in lines), lines  # the end from the speed


@pytest.mark.parametrize("engine", ["torch", "numpy"])
def test_a_warmup_longer_than_the_run_is_said_once(tiny_corpus, tmp_path, capsys, engine):
    args = [a for a in tiny_train_args(tiny_corpus, tmp_path / "run", "--max-steps", "8", "--engine", engine)]
    i = args.index("--warmup-steps")
    args[i + 1] = "100"
    assert main(args) == 0
    warnings = [line for line in _split(capsys)[1].splitlines() if "warning" in line]
    assert warnings == ["rnnkit: warning: the warm-up (--warmup-steps 100) is longer than the run (8 steps): "
                        "the learning rate only reaches 8% of --lr; lower --warmup-steps (e.g. 1)"]
    assert main(tiny_train_args(tiny_corpus, tmp_path / "ok", "--max-steps", "8", "--engine", engine)) == 0
    assert "warning" not in _split(capsys)[1]


# -- early stopping ------------------------------------------------------------------------
# --min-delta 100: the first validation sets the best, no later one improves on it by 100
STOPPING = ("--val-every", "5", "--checkpoint-every", "5", "--min-delta", "100")


def _meta(out):
    return json.loads((out / C.TRAIN_META_FILE).read_text())


@pytest.mark.parametrize("engine", ["torch", "numpy"])
def test_patience_stops_and_a_resumed_run_continues_the_count(tiny_corpus, tmp_path, capsys, engine):
    whole = tmp_path / "whole"
    assert main(tiny_train_args(tiny_corpus, whole, "--engine", engine, "--max-steps", "40", "--patience", "3",
                                *STOPPING)) == 0
    out, err = _split(capsys)
    # validations at 5 (best), 10, 15, 20 (third without improvement): stop at 20
    assert out[-1].startswith(f"done: step 20 (stopped early), checkpoint {whole}")
    assert ("rnnkit: stopped early at step 20: the validation loss did not improve by more than --min-delta 100 "
            "in 3 validation(s) in a row (--patience 3) (best ") in err
    assert "--keep-best also keeps the best ones" in err
    saved = _meta(whole)
    assert saved["global_step"] == 20
    assert saved["early_stopping"]["bad_checks"] == 3 and saved["early_stopping"]["best_step"] == 5

    # the same plan cut at step 10, then resumed (no --patience given again: the saved one holds)
    part = tmp_path / "part"
    assert main(tiny_train_args(tiny_corpus, part, "--engine", engine, "--max-steps", "10", "--patience", "3",
                                *STOPPING)) == 0
    assert "stopped early" not in "".join(_split(capsys)[0])
    assert _meta(part)["early_stopping"]["bad_checks"] == 1
    assert main(tiny_train_args(tiny_corpus, part, "--engine", engine, "--max-steps", "40", "--resume", str(part),
                                "--val-every", "5", "--checkpoint-every", "5")) == 0
    out, _ = _split(capsys)
    assert out[-1].startswith("done: step 20 (stopped early)"), out  # a fresh count would have run to 30
    assert _meta(part)["early_stopping"] == saved["early_stopping"] | {"best": _meta(part)["early_stopping"]["best"]}


def test_patience_with_keep_best_points_at_the_best_weights(tiny_corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(tiny_train_args(tiny_corpus, out, "--max-steps", "40", "--patience", "2", "--keep-best",
                                "--log-every", "5", *STOPPING)) == 0
    lines, err = _split(capsys)
    assert lines[-1].startswith("done: step 15 (stopped early)")
    assert f"the best weights are in {out / 'checkpoints' / 'best'}" in err
    # --keep-best keeps the lowest validation loss; --min-delta only decides when to stop
    seen = {int(m.group(1)): float(m.group(2)) for m in re.finditer(r"^step (\d+)/\d+ .*val_loss (\S+)", err, re.M)}
    assert sorted(seen) == [5, 10, 15]
    best = json.loads((out / "checkpoints" / "best" / C.CONFIG_FILE).read_text())
    assert best["global_step"] == min(seen, key=seen.get)
    assert best["metrics"]["val_loss"] == pytest.approx(min(seen.values()), abs=1e-4)
    assert _meta(out)["early_stopping"]["best_step"] == 5


@pytest.mark.parametrize("flags,message", [
    (("--patience", "0"), "--patience must be >= 1, got 0"),
    (("--min-delta", "0.1"), "--min-delta needs --patience N"),
    (("--patience", "2", "--min-delta", "-1"), "--min-delta must be >= 0, got -1"),
    (("--log-every", "-1"), "--log-every must be >= 0, got -1"),
])
def test_bad_early_stopping_flags(tiny_corpus, tmp_path, capsys, flags, message):
    assert main(tiny_train_args(tiny_corpus, tmp_path / "run", "--max-steps", "5", *flags)) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_log_lines_without_a_validation_split(capsys):
    """A line that waits for its step's validation is not lost when none comes."""
    from types import SimpleNamespace

    from rnnkit.training.feedback import LogLines

    cb = LogLines(every=5, val_every=5, max_steps=12, max_minutes=None, warmup_steps=0)
    module = SimpleNamespace(total_steps=0, schedule_horizon=12, rate=100.0, rate_unit="texts")
    trainer = SimpleNamespace(is_global_zero=True, callback_metrics={})
    cb.on_train_start(trainer, module)
    for step in range(1, 13):  # no validation ever ends
        module.total_steps = step
        cb.on_train_batch_end(trainer, module, None, None, step - 1)
    lines = [line.split("  ")[0] for line in capsys.readouterr().err.splitlines()]
    assert lines == ["step 6/12", "step 10/12"]  # step 5's line once the validation did not come, then on time
