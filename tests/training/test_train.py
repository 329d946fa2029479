"""Training runs on a tiny corpus: determinism, exact resume, checkpoints, budgets."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from rnnkit import checkpoint as C
from rnnkit.cli.main import main
from tests.util import tiny_train_args


def _weights(path):
    return C.load_checkpoint(path).weights


def _interrupted_run(argv, stop_at):
    """Run the CLI's training with a callback that stops it after ``stop_at`` steps."""
    import lightning as L

    from rnnkit.cli.common import overrides_from
    from rnnkit.cli.main import build_parser
    from rnnkit.training.config import build_config
    from rnnkit.training.run import train

    class Stop(L.Callback):
        def on_train_batch_end(self, trainer, module, *args):
            if module.total_steps >= stop_at:
                trainer.should_stop = True

    args = build_parser().parse_args(argv)
    cfg = build_config({}, overrides_from(args), task=args.task)
    cfg.run.progress = False
    train(cfg, callbacks=[Stop()])


def test_same_seed_same_weights_and_resume_is_bitwise_identical(tiny_corpus, tmp_path, capsys):
    extra = ("--dropout", "0.2", "--seed", "3")
    assert main(tiny_train_args(tiny_corpus, tmp_path / "a", "--max-steps", "10", *extra)) == 0
    assert main(tiny_train_args(tiny_corpus, tmp_path / "b", "--max-steps", "10", *extra)) == 0
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(np.array_equal(wa[k], wb[k]) for k in wa), "same seed must give the same run"

    # the same command interrupted after 4 steps (mid-pass, with carried state), then resumed
    _interrupted_run(tiny_train_args(tiny_corpus, tmp_path / "c", "--max-steps", "10", *extra), stop_at=4)
    capsys.readouterr()
    assert main(tiny_train_args(tiny_corpus, tmp_path / "c", "--max-steps", "10", "--resume", str(tmp_path / "c"), *extra)) == 0
    assert "resumed from step 4" in capsys.readouterr().err
    wc = _weights(tmp_path / "c")
    for k in wa:
        assert np.array_equal(wa[k], wc[k]), f"{k} differs after resume"
    meta = json.loads((tmp_path / "c" / C.TRAIN_META_FILE).read_text())
    assert meta["global_step"] == 10
    assert meta["carry"] is not None, "the carried RNN state is part of the train state"


def test_resume_crosses_an_epoch_boundary_exactly(tmp_path):
    from tests.util import make_text

    corpus = tmp_path / "small.txt"
    corpus.write_text(make_text(12), encoding="utf-8")  # ~4 windows per pass: several passes
    extra = ("--seed", "1", "--val-fraction", "0.2")
    assert main(tiny_train_args(corpus, tmp_path / "a", "--max-steps", "12", *extra)) == 0
    _interrupted_run(tiny_train_args(corpus, tmp_path / "b", "--max-steps", "12", *extra), stop_at=7)
    assert main(tiny_train_args(corpus, tmp_path / "b", "--max-steps", "12", "--resume", str(tmp_path / "b"), *extra)) == 0
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert json.loads((tmp_path / "b" / C.TRAIN_META_FILE).read_text())["data_position"][0] >= 1


def test_checkpoint_layout_and_periodic_pruning(tiny_corpus, tmp_path):
    out = tmp_path / "run"
    assert main(tiny_train_args(tiny_corpus, out, "--max-steps", "10", "--keep-checkpoints", "2")) == 0
    for name in (C.MODEL_FILE, C.CONFIG_FILE, C.TRAIN_TENSORS_FILE, C.TRAIN_META_FILE):
        assert (out / name).is_file()
    assert [d.name for d in C.list_step_dirs(out)] == ["step-0000009", "step-0000010"]
    cfg = json.loads((out / C.CONFIG_FILE).read_text())
    assert cfg["task"] == "charlm" and cfg["format_version"] == C.FORMAT_VERSION
    assert cfg["model"]["hidden_size"] == 16 and "".join(cfg["data"]["vocab"]).startswith("\n ")
    assert cfg["metrics"]["val_loss"] > 0 and abs(cfg["metrics"]["val_bpc"] * np.log(2) - cfg["metrics"]["val_loss"]) < 1e-9


def test_loss_falls_and_csv_log_is_written(tiny_corpus, tmp_path):
    out = tmp_path / "run"
    args = tiny_train_args(tiny_corpus, out, "--max-steps", "80", "--lr", "2e-2", "--hidden", "48",
                           "--batch-size", "16", "--seq-len", "32", "--val-every", "40",
                           "--checkpoint-every", "40", "--logger", "csv")
    assert main(args) == 0
    rows = list(csv.DictReader(open(out / "logs" / "metrics.csv")))
    train = [float(r["train_loss"]) for r in rows if r.get("train_loss")]
    assert train[-1] < train[0] - 0.8, train
    val = json.loads((out / C.CONFIG_FILE).read_text())["metrics"]["val_loss"]
    assert val < np.log(len(set(tiny_corpus.read_text()))) - 1.0, "well below the uniform baseline"


def test_value_clipping_and_gru_encoder_train(tiny_corpus, tmp_path):
    out = tmp_path / "run"
    assert main(tiny_train_args(tiny_corpus, out, "--max-steps", "3", "--encoder", "gru", "--clip-value", "5")) == 0
    cfg = json.loads((out / C.CONFIG_FILE).read_text())
    assert cfg["model"]["encoder"] == "gru" and cfg["train"]["optim"]["clip_value"] == 5.0


def test_max_steps_already_reached_is_a_no_op(tiny_corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(tiny_train_args(tiny_corpus, out, "--max-steps", "3")) == 0
    before = (out / C.MODEL_FILE).read_bytes()
    assert main(tiny_train_args(tiny_corpus, out, "--max-steps", "3", "--resume", str(out))) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert (out / C.MODEL_FILE).read_bytes() == before


def test_same_seed_gives_identical_losses_and_checkpoint_bytes(tiny_corpus, tmp_path):
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert main(tiny_train_args(tiny_corpus, out, "--max-steps", "12", "--dropout", "0.3", "--seed", "9",
                                    "--logger", "csv", "--val-every", "6")) == 0
        runs.append(out)
    a, b = runs
    for name in (C.MODEL_FILE, C.TRAIN_TENSORS_FILE):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert json.loads((a / C.CONFIG_FILE).read_text()) == json.loads((b / C.CONFIG_FILE).read_text())
    meta_a, meta_b = (json.loads((d / C.TRAIN_META_FILE).read_text()) for d in runs)
    assert meta_a == meta_b
    losses = [[(r["step"], r.get("train_loss"), r.get("val_loss")) for r in csv.DictReader(open(d / "logs" / "metrics.csv"))]
              for d in runs]
    assert losses[0] == losses[1] and len(losses[0]) > 2


def test_resume_from_a_periodic_checkpoint_is_bitwise_identical(tiny_corpus, tmp_path):
    extra = ("--dropout", "0.2", "--seed", "6", "--checkpoint-every", "4", "--keep-checkpoints", "5")
    assert main(tiny_train_args(tiny_corpus, tmp_path / "a", "--max-steps", "10", *extra)) == 0
    b = tmp_path / "b"
    assert main(tiny_train_args(tiny_corpus, b, "--max-steps", "10", *extra)) == 0
    # as after a crash right after step 8 was written: only the periodic copy is usable
    for name in (C.MODEL_FILE, C.CONFIG_FILE, C.TRAIN_TENSORS_FILE, C.TRAIN_META_FILE):
        (b / name).unlink()
    for d in C.list_step_dirs(b):
        if d.name > "step-0000008":
            import shutil

            shutil.rmtree(d)
    assert main(tiny_train_args(tiny_corpus, b, "--max-steps", "10", "--resume", str(b), *extra)) == 0
    wa, wb = _weights(tmp_path / "a"), _weights(b)
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)


def test_resumed_run_keeps_the_earlier_log_and_logs_global_steps(tiny_corpus, tmp_path):
    out = tmp_path / "run"
    args = ("--logger", "csv", "--val-every", "100")
    assert main(tiny_train_args(tiny_corpus, out, "--max-steps", "20", *args)) == 0
    first = (out / "logs" / "metrics.csv").read_text()
    assert main(tiny_train_args(tiny_corpus, out, "--max-steps", "40", "--resume", str(out), *args)) == 0
    assert (out / "logs" / "metrics.csv").read_text() == first
    rows = list(csv.DictReader(open(out / "logs" / "resumed-0000020" / "metrics.csv")))
    steps = [int(r["step"]) for r in rows if r.get("train_loss")]
    assert steps and min(steps) >= 20, steps


def test_resume_into_another_out_that_holds_a_checkpoint_is_refused(tiny_corpus, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(tiny_train_args(tiny_corpus, a, "--max-steps", "3")) == 0
    assert main(tiny_train_args(tiny_corpus, b, "--max-steps", "3")) == 0
    capsys.readouterr()
    rc = main(tiny_train_args(tiny_corpus, b, "--max-steps", "6", "--resume", str(a)))
    assert rc == 2 and "--overwrite" in capsys.readouterr().err
    assert C.load_checkpoint(b, with_train_state=True).train_meta["global_step"] == 3


def test_resume_refuses_a_changed_corpus(tiny_corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(tiny_train_args(tiny_corpus, out, "--max-steps", "3")) == 0
    tiny_corpus.write_text(tiny_corpus.read_text()[::-1], encoding="utf-8")
    capsys.readouterr()
    rc = main(tiny_train_args(tiny_corpus, out, "--max-steps", "6", "--resume", str(out)))
    assert rc == 2 and "not the corpus this run was trained on" in capsys.readouterr().err


def test_keep_best_keeps_the_lowest_validation_loss(tiny_corpus, tmp_path, capsys):
    """--keep-best: OUT/checkpoints/best/ holds the weights of the step with the lowest
    validation loss (equal to that step's periodic checkpoint); the run itself is unchanged."""
    extra = ("--max-steps", "12", "--val-every", "2", "--checkpoint-every", "2", "--keep-checkpoints", "10",
             "--lr", "0.2", "--schedule", "constant", "--logger", "csv")
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(tiny_train_args(tiny_corpus, a, *extra)) == 0
    assert main(tiny_train_args(tiny_corpus, b, "--keep-best", *extra)) == 0
    wa, wb = _weights(a), _weights(b)
    assert all(np.array_equal(wa[k], wb[k]) for k in wa), "keeping the best must not change the run"
    with open(b / "logs" / "metrics.csv") as f:
        losses = {int(r["step"]) + 1: float(r["val_loss"]) for r in csv.DictReader(f) if r.get("val_loss")}
    best_step = min(losses, key=losses.get)
    assert best_step < 12, "the setting must make the best step an earlier one"
    best = C.load_checkpoint(b / "checkpoints" / "best")
    assert best.config["global_step"] == best_step and best.config["best_of"] == "val_loss"
    assert best.config["metrics"]["val_loss"] == pytest.approx(losses[best_step], rel=1e-6)
    periodic = _weights(b / "checkpoints" / C.step_dir_name(best_step))
    assert all(np.array_equal(best.weights[k], periodic[k]) for k in periodic)
    assert not (b / "checkpoints" / "best" / C.TRAIN_META_FILE).exists()  # never a resume point
    capsys.readouterr()
    assert main(["evaluate", str(b / "checkpoints" / "best"), "--threads", "1"]) == 0
    assert not all(np.array_equal(best.weights[k], wb[k]) for k in wb)
    # a resumed run replaces the best only with a better one
    longer = [x if x != "12" else "16" for x in extra]
    assert main(tiny_train_args(tiny_corpus, b, "--keep-best", "--resume", str(b), *longer)) == 0
    with open(b / "logs" / "resumed-0000012" / "metrics.csv") as f:
        losses.update({int(r["step"]) + 1: float(r["val_loss"]) for r in csv.DictReader(f) if r.get("val_loss")})
    assert max(losses) == 16
    assert C.load_checkpoint(b / "checkpoints" / "best").config["global_step"] == min(losses, key=losses.get)
    # resumed into another --out that it overwrites: that run's best loss is not the bar
    c = tmp_path / "c"
    assert main(tiny_train_args(tiny_corpus, c, "--keep-best", *extra)) == 0
    cfg = json.loads((c / "checkpoints" / "best" / C.CONFIG_FILE).read_text())
    cfg["metrics"]["val_loss"] = 0.0  # unbeatable
    (c / "checkpoints" / "best" / C.CONFIG_FILE).write_text(json.dumps(cfg))
    assert main(tiny_train_args(tiny_corpus, c, "--keep-best", "--resume", str(b), "--overwrite",
                                *[x if x != "12" else "20" for x in extra])) == 0
    assert C.load_checkpoint(c / "checkpoints" / "best").config["global_step"] > 16
    assert "--keep-best needs --engine torch" in _refusal(tiny_train_args(tiny_corpus, tmp_path / "n", "--keep-best",
                                                                          "--engine", "numpy"), capsys)


def _refusal(argv, capsys):
    capsys.readouterr()
    assert main(argv) == 2
    return capsys.readouterr().err
