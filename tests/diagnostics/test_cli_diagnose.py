"""``rnnkit diagnose`` and ``rnnkit bench memory`` end to end, the exploding experiment, and bad input."""

from __future__ import annotations

import json
import math

import pytest

from rnnkit.cli.main import main
from rnnkit.diagnostics.experiments import exploding_experiment


def test_exploding_without_clipping_diverges_and_clipping_keeps_it_stable():
    r = exploding_experiment(radius=2.0, seq_len=30, hidden=32, batch_size=16, steps=45)["runs"]
    assert r["none"]["diverged"] and r["none"]["clip_fraction"] == 0.0
    assert not r["norm"]["diverged"] and not r["value"]["diverged"]
    for mode in ("norm", "value"):
        assert r[mode]["steps_run"] == 45 and all(math.isfinite(v) for v in r[mode]["loss"])
        assert r[mode]["final_loss"] < r[mode]["loss"][0]
        assert r[mode]["clip_fraction"] > 0.5
    # norm clipping bounds the applied gradient; it fired whenever the raw norm exceeded 1
    assert max(r["norm"]["grad_norm_clipped"]) <= 1.0 + 1e-4
    assert all(f == (g > 1.0) for f, g in zip(r["norm"]["fired"], r["norm"]["grad_norm"]))
    assert max(r["norm"]["grad_norm"]) > 10.0  # the radius-2 recurrence does explode


def test_diagnose_gradients_cli(tmp_path, capsys):
    out = tmp_path / "g"
    rc = main(["diagnose", "gradients", "--cells", "rnn,lstm", "--seq-len", "30", "--hidden", "8",
               "--batch-size", "4", "--train-steps", "3", "--lag", "10", "--out", str(out), "--threads", "1"])
    assert rc == 0
    res = json.loads((out / "gradients.json").read_text())
    assert set(res["cells"]) == {"rnn", "lstm"}
    for rec in res["cells"].values():
        assert len(rec["init"]["norms"]) == 30 and len(rec["trained"]["norms"]) == 30
        assert rec["init"]["lag"] == pytest.approx(rec["init"]["norms"][-11])
        assert rec["numpy_max_rel_diff"] < 1e-9
    assert "forget-gate bias 1" in res["setup"]["init"]
    assert (out / "gradients.png").read_bytes()[:4] == b"\x89PNG"
    assert "LSTM / tanh RNN" in capsys.readouterr().out


def test_the_lag_defaults_from_the_sequence_length(tmp_path, capsys):
    """`diagnose gradients --seq-len 50` failed: the default --lag 60 was not < 50."""
    out = tmp_path / "g"
    assert main(["diagnose", "gradients", "--cells", "rnn", "--seq-len", "50", "--hidden", "8", "--batch-size", "4",
                 "--train-steps", "0", "--out", str(out), "--threads", "1"]) == 0
    res = json.loads((out / "gradients.json").read_text())
    assert res["setup"]["lag"] == 15 and "15 steps back" in capsys.readouterr().out
    from rnnkit.cli.diagnose import default_lag

    assert [default_lag(t) for t in (2, 10, 50, 200, 1000)] == [1, 3, 15, 60, 60]
    # an explicit lag is still checked
    assert main(["diagnose", "gradients", "--seq-len", "50", "--lag", "50", "--out", str(out)]) == 2
    assert "--lag (50) must be smaller than --seq-len (50)" in capsys.readouterr().err


def test_exploding_plot_keeps_one_colour_per_method_and_its_legend_off_the_data():
    from rnnkit.diagnostics.experiments import exploding_figure

    result = exploding_experiment(radius=2.0, seq_len=10, hidden=8, batch_size=4, steps=6)
    fig = exploding_figure(result)
    loss_ax, grad_ax = fig.axes
    colour = {ln.get_label().split(" - ")[0]: ln.get_color() for ln in loss_ax.get_lines() if "baseline" not in ln.get_label()}
    assert len(set(colour.values())) == 3
    names = {"none": "no clipping", "norm": "norm clipping (1.0)", "value": "value clipping (0.05)"}
    for ln in grad_ax.get_lines():
        mode = ln.get_label().strip("_").split()[0]
        assert ln.get_color() == colour[names[mode]], ln.get_label()
    assert loss_ax.get_legend() is None and grad_ax.get_legend() is None
    (legend,) = fig.legends
    fig.canvas.draw()
    box = legend.get_window_extent()
    assert not any(box.overlaps(ax.get_window_extent()) for ax in fig.axes)
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_diagnose_exploding_cli(tmp_path):
    out = tmp_path / "e"
    rc = main(["diagnose", "exploding", "--steps", "8", "--seq-len", "12", "--hidden", "8", "--out", str(out),
               "--threads", "1"])
    assert rc == 0
    res = json.loads((out / "exploding.json").read_text())  # strict JSON: non-finite values are null
    assert set(res["runs"]) == {"none", "norm", "value"} and res["setup"]["radius"] == 2.0
    assert (out / "exploding.png").exists()


def test_bench_memory_cli(tmp_path, capsys):
    out = tmp_path / "b"
    rc = main(["bench", "memory", "--quick", "--tasks", "adding", "--cells", "rnn,lstm", "--steps-scale", "0.02",
               "--reference-hidden", "8", "--batch-size", "8", "--out", str(out)])
    assert rc == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    summary = json.loads(last)
    assert set(summary) == {"adding_T30/rnn", "adding_T30/lstm"}
    assert json.loads((out / "memory.json").read_text())["settings"]["quick"] is True
    assert (out / "memory-adding_T30.png").exists()


@pytest.mark.parametrize("argv,needle", [
    (["diagnose", "gradients", "--seq-len", "10", "--lag", "10"], "--lag (10) must be smaller than --seq-len (10)"),
    (["diagnose", "gradients", "--cells", "rnn,foo"], "--cells takes"),
    (["diagnose", "gradients", "--data", "tinyshakespeare"], "--data needs a checkpoint"),
    (["diagnose", "exploding", "--radius", "-1"], "--radius must be > 0"),
    (["bench", "memory", "--tasks", "adding,nope"], "--tasks takes"),
])
def test_bad_input_is_one_line(tmp_path, capsys, argv, needle):
    try:
        rc = main(argv + ["--out", str(tmp_path / "o")])
    except SystemExit as e:  # argparse's own errors (one line too, see cli/common.Parser)
        rc = e.code
    err = capsys.readouterr().err.strip()
    assert rc == 2 and needle in err and len(err.splitlines()) == 1


def test_not_a_checkpoint(tmp_path, capsys):
    (tmp_path / "ck").mkdir()
    rc = main(["diagnose", "gradients", str(tmp_path / "ck"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "rnnkit: error:" in err
