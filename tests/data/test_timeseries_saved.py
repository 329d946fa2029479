"""A forecast checkpoint written before the fit/transform split of ``data/timeseries.py``
(tests/data/forecast_golden/, frozen by ``make_golden.py`` there) still loads and gives the same
features, forecasts and backtest; the fitted data state of other configurations is unchanged."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from rnnkit.cli.main import main
from rnnkit.data import timeseries as ts

from .forecast_golden.make_golden import STATE_SPECS, digest

DATA = Path(__file__).parent / "forecast_golden"
GOLDEN = json.loads((DATA / "golden.json").read_text())


def test_old_checkpoint_forecasts_the_same_numbers(tmp_path, capsys):
    out = tmp_path / "f.csv"
    assert main(["forecast", str(DATA / "checkpoint"), "--data", str(DATA / "series.csv"), "--output", str(out),
                 "--threads", "1"]) == 0
    rows = list(csv.DictReader(open(out)))
    want = GOLDEN["forecast_rows"]
    assert [(r["series"], r["time"], r["target"]) for r in rows] == [(w["series"], w["time"], w["target"]) for w in want]
    for r, w in zip(rows, want):
        for key in ("forecast", "lower", "median", "upper"):
            assert float(r[key]) == pytest.approx(w[key], rel=1e-6, abs=1e-9), (r, w)


def test_old_checkpoint_backtests_the_same_numbers(capsys):
    capsys.readouterr()
    assert main(["backtest", str(DATA / "checkpoint"), "--data", str(DATA / "series.csv"), "--json",
                 "--arima", "none", "--threads", "1"]) == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    want = GOLDEN["backtest"]
    assert {k: rep[k] for k in want if k != "models"} == {k: v for k, v in want.items() if k != "models"}
    assert rep["models"].keys() == want["models"].keys()
    for name, metrics in want["models"].items():
        got = rep["models"][name]
        assert got.keys() == metrics.keys()
        for key, v in metrics.items():
            assert got[key] == (None if v is None else pytest.approx(v, rel=1e-5, abs=1e-6)), (name, key)


def test_saved_state_rebuilds_bit_identical_features():
    config = json.loads((DATA / "checkpoint" / "config.json").read_text())
    state = config["data"]
    spec = ts.Spec(**{**state["spec"], "data": str(DATA / "series.csv")})
    data = ts.transform(ts.read_table(spec), spec, state)
    assert [digest(s.feats) for s in data.series] == GOLDEN["feats"]
    assert data.state["scalers"] == state["scalers"] and data.state["naive_mae"] == state["naive_mae"]


def old_single_name(state, name):
    """The frozen state with its one ungrouped series renamed from ``series`` (the name before
    #19 named it after its target) to ``name``; nothing else changes."""
    if state["series"] != ["series"]:
        return state
    out = json.loads(json.dumps(state))
    out["series"] = [name]
    for key in ("scalers", "freq", "naive_mae"):
        if isinstance(out.get(key), dict) and "series" in out[key]:
            out[key][name] = out[key].pop("series")
    return out


@pytest.mark.parametrize("name", sorted(STATE_SPECS))
def test_fitted_state_is_unchanged(name):
    want = GOLDEN["states"][name]
    src = DATA / want["state"]["spec"]["data"]
    spec = ts.resolve_spec({"data": str(src), **STATE_SPECS[name]})
    frame = ts.read_table(spec)
    data = ts.fit_transform(frame, spec)
    state = ts.fit(frame, spec)
    assert json.loads(json.dumps(state)) == json.loads(json.dumps(data.state))
    state["spec"]["data"] = src.name
    assert json.loads(json.dumps(state)) == old_single_name(want["state"], data.series[0].name)
    assert {k: digest(v) for k, v in data.windows.items()} == want["windows"]
    assert [digest(s.feats) for s in data.series] == want["feats"]
    # inference on the same table takes the same path: the same features and windows
    again = ts.transform(frame, spec, data.state)
    assert [digest(s.feats) for s in again.series] == want["feats"]
    assert {k: digest(v) for k, v in again.windows.items()} == want["windows"]
