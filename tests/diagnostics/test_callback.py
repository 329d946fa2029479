"""``--diagnostics-every``: the Lightning callback logs, changes nothing, and diagnoses checkpoints."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from rnnkit import checkpoint as C
from rnnkit.cli.main import main
from tests.util import tiny_train_args


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from tests.util import make_text

    root = tmp_path_factory.mktemp("diag")
    corpus = root / "tiny.txt"
    corpus.write_text(make_text(), encoding="utf-8")
    common = ("--max-steps", "6", "--dropout", "0.2", "--seed", "1", "--clip-norm", "0.05")
    plain = tiny_train_args(corpus, root / "plain", *common)
    diag = tiny_train_args(corpus, root / "diag", *common, "--diagnostics-every", "3")
    assert main(plain) == 0
    argv = [a if a != "none" else "csv" for a in diag]  # CSV logging for this run
    assert main(argv) == 0
    rows = list(csv.DictReader(open(root / "diag" / "logs" / "metrics.csv")))
    return root, corpus, [r for r in rows if r.get("diag/grad_norm")]


def test_diagnostics_do_not_change_training(runs):
    root, _, _ = runs
    a, b = C.load_checkpoint(root / "plain").weights, C.load_checkpoint(root / "diag").weights
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_diagnostics_logged_to_csv(runs):
    _, _, diag = runs
    assert [int(r["step"]) for r in diag] == [3, 6]
    r = diag[-1]
    for key in ("diag/clip_fraction", "diag/grad_norm_clipped", "diag/dh/l0/last", "diag/dh/l1/first",
                "diag/gate/l1/forget/high", "diag/spectral/l0/f", "diag/grad/encoder.weight_hh_l0"):
        assert r.get(key, "") != "", key


def test_clipping_measured_before_and_after(runs):
    _, _, diag = runs
    for row in diag:
        h = {k: float(v) for k, v in row.items() if k.startswith("diag/")}
        assert h["diag/clip_fraction"] == 1.0  # --clip-norm 0.05 is far below the raw norm
        assert h["diag/grad_norm"] > 0.05
        assert h["diag/grad_norm_clipped"] == pytest.approx(0.05, rel=1e-3)
        assert h["diag/dh/l1/last"] > 0 and np.isfinite(h["diag/dh/l0/log10_ratio"])
        assert 0.0 <= h["diag/gate/l0/input/low"] <= 1.0


def test_diagnose_trained_checkpoint(runs, tmp_path, capsys):
    root, corpus, _ = runs
    out = tmp_path / "ck"
    rc = main(["diagnose", "gradients", str(root / "plain"), "--data", str(corpus), "--seq-len", "24",
               "--batch-size", "4", "--lag", "8", "--out", str(out), "--threads", "1"])
    assert rc == 0, capsys.readouterr().err
    res = json.loads((out / "gradients.json").read_text())
    assert set(res["layers"]) == {"l0", "l1"} and res["setup"]["cell"] == "lstm"
    assert len(res["layers"]["l1"]["norms"]) == 24
    assert res["layers"]["l1"]["lag"] == pytest.approx(res["layers"]["l1"]["norms"][-9])
    assert set(res["gates"]["l0"]) == {"input", "forget", "output"}
    assert (out / "gradients.png").exists()
    rc = main(["diagnose", "gradients", str(root / "plain"), "--data", str(corpus), "--seq-len", "100000",
               "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "need at least --seq-len" in err


def test_callback_history_and_validation():
    from rnnkit.training.config import RunConfig
    from rnnkit.training.diagnostics import GradientDiagnostics
    from rnnkit.errors import ConfigError

    with pytest.raises(ValueError):
        GradientDiagnostics(0)
    with pytest.raises(ConfigError, match="--diagnostics-every"):
        RunConfig(diagnostics_every=-1)
    assert RunConfig().diagnostics_every == 0  # off by default


def test_exploding_on_a_trained_checkpoint(runs, tmp_path, capsys):
    root, corpus, _ = runs
    out = tmp_path / "ex"
    rc = main(["diagnose", "exploding", str(root / "plain"), "--data", str(corpus), "--radius", "3",
               "--seq-len", "20", "--batch-size", "4", "--steps", "3", "--out", str(out), "--threads", "1"])
    assert rc == 0, capsys.readouterr().err
    res = json.loads((out / "exploding.json").read_text())
    assert res["setup"]["cell"] == "lstm" and res["setup"]["radius"] == 3.0
    for mode in ("none", "norm", "value"):
        r = res["runs"][mode]
        assert r["steps_run"] == 3 and len(r["grad_norm"]) == 3
        assert max(r["spectral_radius_init"]["l0"].values()) == pytest.approx(3.0)
    # the same start and data for all three: the first step's raw gradient is identical
    assert res["runs"]["none"]["grad_norm"][0] == pytest.approx(res["runs"]["norm"]["grad_norm"][0])
    assert max(res["runs"]["norm"]["grad_norm_clipped"]) <= 1.0 + 1e-4
