"""Memory-task data, parameter matching and the benchmark runner."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rnnkit.data import memory_tasks as mt
from rnnkit.diagnostics import memory


def test_adding_problem_structure_and_baseline():
    x, y = mt.adding_problem(4000, 20, np.random.default_rng(0))
    assert x.shape == (4000, 20, 2) and y.shape == (4000,) and x.dtype == np.float32
    markers = x[:, :, 1]
    assert np.all(markers.sum(1) == 2)
    assert np.all(markers[:, :10].sum(1) == 1) and np.all(markers[:, 10:].sum(1) == 1)
    np.testing.assert_allclose((x[:, :, 0] * markers).sum(1), y, rtol=1e-6)
    assert np.mean((y - 1.0) ** 2) == pytest.approx(mt.ADDING_BASELINE, abs=0.01)
    with pytest.raises(ValueError):
        mt.adding_problem(1, 1, np.random.default_rng(0))


def test_copy_memory_structure_and_memoryless_baseline():
    delay, length = 7, 10
    x, y = mt.copy_memory(50, delay, np.random.default_rng(1), length=length)
    assert x.shape == y.shape == (50, delay + 2 * length)
    np.testing.assert_array_equal(y[:, -length:], x[:, :length])
    assert np.all(y[:, :-length] == 0) and np.all((x[:, :length] >= 1) & (x[:, :length] <= 8))
    assert np.all(x[:, length + delay - 1] == mt.COPY_DELIMITER)
    assert np.count_nonzero(x[:, length:]) == 50  # only the delimiter after the symbols
    # blanks with certainty, then uniform over the 8 symbols: the best memoryless predictor
    probs = np.zeros((delay + 2 * length, mt.COPY_VOCAB))
    probs[:-length, 0] = 1.0
    probs[-length:, 1:9] = 1.0 / 8
    ce = -np.mean(np.log(probs[np.arange(y.shape[1])[None, :], y]))
    assert ce == pytest.approx(mt.copy_baseline(delay, length))


def test_sequential_digits_splits():
    d = mt.sequential_digits()
    p = mt.sequential_digits(permuted=True)
    n = len(d.y_train) + len(d.y_val) + len(d.y_test)
    assert n == 1797 and d.x_train.shape[1:] == (64, 1) and abs(len(d.y_val) - len(d.y_test)) <= 1
    assert 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0
    np.testing.assert_array_equal(d.y_test, p.y_test)
    np.testing.assert_array_equal(p.x_test[:, :, 0], d.x_test[:, p.permutation, 0])
    assert not np.array_equal(p.permutation, np.arange(64))
    # the same split with or without the permutation; class balance kept (stratified)
    assert np.bincount(d.y_test).min() >= 25


@pytest.mark.parametrize("family,T", [("adding", 50), ("copy", 20), ("digits", None)])
def test_matched_parameters_within_ten_percent(family, T):
    task = memory.make_task(family, T, n_eval=10)
    target = memory.count_params("lstm", task.input_size, 64, task.output_size)
    for cell in memory.CELLS:
        h = memory.matched_hidden(cell, target, task.input_size, task.output_size)
        model = memory.MemoryModel(cell, task.input_size, h, task.output_size, task.per_step)
        n = sum(p.numel() for p in model.parameters())
        assert n == memory.count_params(cell, task.input_size, h, task.output_size)
        assert abs(n - target) / target <= 0.10
    assert memory.matched_hidden("lstm", target, task.input_size, task.output_size) == 64


def test_benchmark_runner_and_outputs(tmp_path):
    budgets = memory.select_budgets(quick=True, families="adding,copy", steps_scale=0.04)
    assert [b.family for b in budgets] == ["adding", "copy"] and all(b.steps >= 1 for b in budgets)
    extended = ((memory.TaskBudget("adding", 30, 12, 3e-3), "gru"),)
    payload = memory.run_benchmark(budgets, cells=("rnn", "gru"), reference_hidden=8, batch_size=8, eval_every=5,
                                   extended=extended)
    assert [(r["task"], r["cell"], r["steps"]) for r in payload["extended"]] == [("adding_T30", "gru", 12)]
    assert set(payload["summary"]) == {"adding_T30/rnn", "adding_T30/gru", "copy_T10/rnn", "copy_T10/gru"}
    for r in payload["runs"]:
        assert math.isfinite(r["final"]) and r["tokens_per_s"] > 0 and r["curve"]
        assert r["curve"][-1][0] == r["steps"]
    copy_runs = [r for r in payload["runs"] if r["task"] == "copy_T10"]
    assert all(r["metric"] == "ce" and r["baseline"] == pytest.approx(mt.copy_baseline(10)) for r in copy_runs)
    assert "| adding_T30 | rnn |" in memory.table(payload)
    paths = memory.plot_curves(payload, tmp_path)
    assert sorted(p.split("/")[-1] for p in paths) == ["memory-adding_T30.png", "memory-copy_T10.png"]
    json.dumps(payload)
    with pytest.raises(Exception):
        memory.select_budgets(families="nope")


def test_parallel_jobs_give_the_same_runs_as_one_process():
    """--jobs trains runs in worker processes; seeded runs must not depend on where they ran."""
    budgets = memory.select_budgets(quick=True, families="adding", steps_scale=0.04)
    kw = dict(cells=("rnn", "lstm"), reference_hidden=8, batch_size=8, eval_every=5)
    one = memory.run_benchmark(budgets, **kw)
    two = memory.run_benchmark(budgets, jobs=2, **kw)
    assert list(two["summary"]) == list(one["summary"])  # table order kept
    assert two["summary"] == one["summary"]
    assert [r["curve"] for r in two["runs"]] == [r["curve"] for r in one["runs"]]
    assert two["settings"]["jobs"] == 2 and two["settings"]["threads"] == 1
    assert one["extended"] == two["extended"] == []
    ext = memory.select_extended(memory.select_budgets(families="adding_T200"), ("rnn", "lstm"), 0.001)
    assert [(b.T, b.steps, cell) for b, cell in ext] == [(200, 8, "lstm")]
    assert memory.select_extended(memory.select_budgets(families="copy"), ("lstm",)) == ()
    assert memory.select_extended(memory.select_budgets(families="adding"), ("gru",)) == ()
    with pytest.raises(Exception, match="--jobs"):
        memory.run_benchmark(budgets, jobs=0, **kw)


def test_lstm_learns_digits_well_above_chance():
    """A real learning check at tiny cost: 120 steps of sequential digits."""
    task = memory.make_task("digits")
    r = memory.train_cell(task, "lstm", 32, steps=120, batch_size=32, lr=1e-2, eval_every=60)
    assert r.final > 0.35, r.final  # chance is ~0.10


def test_throughput_compares_cells_at_matched_and_equal_size():
    speed = memory.throughput(("lstm", "gru"), T=6, batch_size=4, reference_hidden=8, rounds=1)
    assert set(speed) == {"matched", "equal_hidden"}
    eq = speed["equal_hidden"]
    assert eq["lstm"]["hidden"] == eq["gru"]["hidden"] == 8
    # a GRU has 3 gate blocks to the LSTM's 4: fewer weights at the same width
    assert eq["gru"]["params"] < eq["lstm"]["params"]
    assert abs(speed["matched"]["gru"]["params"] - eq["lstm"]["params"]) <= 0.1 * eq["lstm"]["params"]
    assert all(v["tokens_per_s"] > 0 for s in speed.values() for v in s.values())


def test_a_scaled_down_run_still_draws_a_curve(tmp_path):
    """`bench memory --quick --steps-scale 0.2` once validated only at its last step (50 of
    50 steps at eval_every 50): every curve was a single point and the plot was empty."""
    assert memory.eval_interval(50, 3000) == 50 and memory.eval_interval(50, 50) == 5 and memory.eval_interval(50, 3) == 1
    budgets = memory.select_budgets(quick=True, families="adding", steps_scale=0.2)
    assert [b.steps for b in budgets] == [50]
    payload = memory.run_benchmark(budgets, cells=("rnn",), reference_hidden=8, batch_size=8, eval_every=50)
    (run,) = payload["runs"]
    assert [s for s, _ in run["curve"]] == list(range(5, 55, 5))
    import matplotlib.pyplot as plt

    seen = []
    real_close = plt.close
    plt.close = lambda fig=None: seen.append(fig)  # look at the figure before it is closed
    try:
        memory.plot_curves(payload, tmp_path)
    finally:
        plt.close = real_close
    (fig,) = seen
    (line,) = [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("rnn")]
    assert len(line.get_xdata()) == 10 and line.get_marker() == "o"
    real_close(fig)
