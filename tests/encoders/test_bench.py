"""The side-by-side benchmark's machinery at tiny sizes (the real run: benchmarks/encoders.py)."""

from __future__ import annotations

import json

import pytest
import torch

from rnnkit.diagnostics import encoders as E


def test_correctness_checks_cover_every_encoder_and_route():
    checks = E.correctness()
    for kind in ("rnn", "lstm", "gru", "mingru", "minlstm", "tcn", "transformer"):
        assert checks[f"{kind}_step_vs_forward"] <= 1e-10
    for route in ("fused", "chunked", "log"):
        assert checks[f"mingru_{route}_vs_loop"] <= 1e-10 and checks[f"minlstm_{route}_vs_loop"] <= 1e-10


@pytest.mark.parametrize("name", E.ENCODERS)
def test_matched_hidden_is_within_ten_percent(name):
    target = E.n_params(E.make("gru", 256, 256))
    h = E.matched_hidden(name, target, 256)
    got = E.n_params(E.make(name, 256, h))
    assert abs(got - target) / target < 0.10, (name, h, got, target)
    assert h % 8 == 0


def test_generation_state_is_flat_for_rnns_and_grows_for_the_transformer():
    rnn = E.generation("mingru", 8, (1, 40), 8, steps=3)
    att = E.generation("transformer", 8, (1, 40), 8, steps=3)
    assert rnn["1"]["state_bytes"] == rnn["40"]["state_bytes"] > 0
    assert att["40"]["state_bytes"] > 10 * att["1"]["state_bytes"]
    assert all(v["us_per_token"] > 0 for d in (rnn, att) for v in d.values())


def test_train_sweep_skips_cells_predicted_over_budget():
    res = E.train_sweep(["gru", "transformer"], {"gru": 8, "transformer": 8}, (16, 32), 2, 8,
                        reps=1, cell_budget_s=1e-9)
    assert res["gru"]["16"] > 0 and res["gru"]["32"] is None  # 1e-9 s: the second T is skipped
    assert res["transformer"]["32"] is None


def test_tiny_quick_run_summary_and_table():
    payload = E.run(quick=True, B=2, H=8, headline_T=32, positions=(1, 5))
    assert torch.get_num_threads() == 1
    s = E.summary(payload)
    assert s["mingru_vs_gru_train"] > 0 and s["correct"] is True and s["gen_position"] == 5
    assert s["mingru_vs_gru_generate"] > 0
    json.dumps(s)  # one JSON line
    assert "| gru |" in E.table(payload)


def test_adding_problem_runs_for_its_time_budget():
    r = E.adding("mingru", 8, T=10, seconds=0.3, batch=8)
    assert r["steps"] >= 1 and r["seconds"] >= 0.3 and r["test_mse"] >= 0
    assert r["baseline_mse"] == pytest.approx(1 / 6)


@pytest.mark.slow
def test_cli_quick_prints_json_last(capsys, tmp_path):
    from rnnkit.cli.main import main

    assert main(["bench", "encoders", "--quick", "--out", str(tmp_path)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    summary = json.loads(last)
    assert summary["mingru_vs_gru_train"] > 0
    assert (tmp_path / "encoders.json").exists()


def _fake_payload() -> dict:
    """The shape of a full run's throughput and generation sections, with made-up numbers."""
    rows = {"gru": {"128": 9000.0, "512": 8000.0, "2048": 7000.0},
            "mingru": {"128": 30000.0, "512": 25000.0, "2048": 20000.0},
            "transformer": {"128": 10000.0, "512": 6000.0, "2048": None}}  # None: a skipped cell
    return {"settings": {"B": 16, "H": 256},
            "params": {"matched_hidden": {"gru": 256, "mingru": 768, "transformer": 168}},
            "train_equal_hidden": rows, "train_matched_params": rows,
            "generate": {"gru": {"1": {"us_per_token": 290.0, "state_bytes": 2048},
                                 "512": {"us_per_token": 300.0, "state_bytes": 2048}},
                         "transformer": {"1": {"us_per_token": 900.0, "state_bytes": 4096},
                                         "512": {"us_per_token": 2000.0, "state_bytes": 2_000_000}}}}


def test_plot_writes_throughput_and_generation_pngs(tmp_path):
    paths = E.plot(_fake_payload(), tmp_path, "fake")
    assert [p.split("/")[-1] for p in paths] == ["fake-throughput.png", "fake-generation.png"]
    for p in paths:
        data = (tmp_path / p.split("/")[-1]).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert sorted(f.name for f in tmp_path.iterdir()) == ["fake-generation.png", "fake-throughput.png"]  # no temp files


def test_plot_draws_only_what_the_run_measured(tmp_path):
    payload = _fake_payload()
    for key in ("train_equal_hidden", "train_matched_params", "params"):
        payload.pop(key)
    assert [p.split("/")[-1] for p in E.plot(payload, tmp_path, "gen")] == ["gen-generation.png"]
    assert E.plot({"settings": {"B": 1, "H": 1}}, tmp_path, "none") == []


@pytest.mark.parametrize("plan", ["forecast", "sst2"])
def test_quality_sections_match_parameters_within_ten_percent(plan):
    if plan == "forecast":
        n_features, target, p = E.forecast_plan()
        assert n_features == 13  # temp_max, precipitation, temp_min, wind, 5 weather kinds, 4 calendar
        bidirectional = False
    else:
        target, p = E.sst2_plan()
        n_features, bidirectional = E.SST2_EMBEDDING, True
    assert list(p) == list(E.QUALITY_ENCODERS)
    for name, r in p.items():
        assert r["encoder_params"] == E.n_params(E.make(name, n_features, r["hidden"], r["layers"], bidirectional))
        assert abs(r["encoder_params"] - target) <= 0.10 * target, (name, r, target)
    assert p["gru"]["encoder_params"] == target


def test_quick_run_never_starts_the_quality_sections(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("a quality section ran under --quick")

    for f in ("charlm_quality", "forecast_quality", "sst2_quality", "adding"):
        monkeypatch.setattr(E, f, boom)
    payload = E.run(quick=True, B=2, H=8, headline_T=16, positions=(1, 3), sections=E.SECTIONS)
    assert not set(E.QUALITY_SECTIONS) & set(payload)
