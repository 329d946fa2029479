"""The side-by-side benchmark harness (benchmarks/_encoders.py, _encoders_report.py; run by
benchmarks/encoders.py) at tiny sizes. The library measurements it arranges are tested in
tests/diagnostics/test_speed.py."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from rnnkit.diagnostics.speed import make, n_params

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    """benchmarks/NAME.py under its own name (as the script imports it: one module object)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


E = _load("_encoders")
R = _load("_encoders_report")


def test_train_sweep_skips_cells_predicted_over_budget():
    res = E.train_sweep(["gru", "transformer"], {"gru": 8, "transformer": 8}, (16, 32), 2, 8,
                        reps=1, cell_budget_s=1e-9)
    assert res["gru"]["16"] > 0 and res["gru"]["32"] is None  # 1e-9 s: the second T is skipped
    assert res["transformer"]["32"] is None


def test_tiny_quick_run_summary_and_table():
    payload = E.run(quick=True, B=2, H=8, headline_T=32, positions=(1, 5))
    assert torch.get_num_threads() == 1
    s = R.summary(payload)
    assert s["mingru_vs_gru_train"] > 0 and s["correct"] is True and s["gen_position"] == 5
    assert s["mingru_vs_gru_generate"] > 0
    json.dumps(s)  # one JSON line
    assert "| gru |" in R.table(payload)


def test_adding_problem_runs_for_its_time_budget():
    r = E.adding("mingru", 8, T=10, seconds=0.3, batch=8)
    assert r["steps"] >= 1 and r["seconds"] >= 0.3 and r["test_mse"] >= 0
    assert r["baseline_mse"] == pytest.approx(1 / 6)


@pytest.mark.slow
def test_script_quick_prints_json_last(tmp_path, monkeypatch, capsys):
    script = _load("encoders")
    written = {}

    def write_json(name, payload):
        written[name] = payload
        return tmp_path / f"{name}.json"

    monkeypatch.setattr(script, "write_json", write_json)  # not into benchmarks/results/
    monkeypatch.setattr(script, "RESULTS", tmp_path)
    assert script.main(["--quick", "--name", "test-quick"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["mingru_vs_gru_train"] > 0 and written["test-quick"]["machine"]["cpus"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test-quick-generation.png"]


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
    paths = R.plot(_fake_payload(), tmp_path, "fake")
    assert [p.split("/")[-1] for p in paths] == ["fake-throughput.png", "fake-generation.png"]
    for p in paths:
        data = (tmp_path / p.split("/")[-1]).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert sorted(f.name for f in tmp_path.iterdir()) == ["fake-generation.png", "fake-throughput.png"]  # no temp files


def test_plot_draws_only_what_the_run_measured(tmp_path):
    payload = _fake_payload()
    for key in ("train_equal_hidden", "train_matched_params", "params"):
        payload.pop(key)
    assert [p.split("/")[-1] for p in R.plot(payload, tmp_path, "gen")] == ["gen-generation.png"]
    assert R.plot({"settings": {"B": 1, "H": 1}}, tmp_path, "none") == []


@pytest.mark.parametrize("section", ["charlm", "forecast", "sst2"])
def test_quality_sections_match_parameters_within_ten_percent(section):
    q = E.QUALITY[section]
    n_in, target, plan = E.quality_plan(q)
    if section == "forecast":
        assert n_in == 13  # temp_max, precipitation, temp_min, wind, 5 weather kinds, 4 calendar
    assert list(plan) == list(E.QUALITY_ENCODERS)
    for name, r in plan.items():
        assert r["encoder_params"] == n_params(make(name, n_in, r["hidden"], r["layers"], q.bidirectional))
        assert abs(r["encoder_params"] - target) <= 0.10 * target, (name, r, target)
    assert plan["gru"]["encoder_params"] == target and plan["gru"]["hidden"] == q.reference_hidden


@pytest.mark.parametrize("section", ["charlm", "forecast", "sst2"])
def test_one_quality_function_runs_train_then_its_own_scoring(section, monkeypatch):
    """Every section goes through ``quality``: one training process per encoder with the
    section's flags, then only its own scoring verb (the char-LM section scores nothing)."""
    calls = []
    report = {"models": {"model": {"mase": 0.9, "mae": 2.0, "rmse": 2.5},
                         "naive": {"mase": 1.0, "mae": 2.2, "rmse": 2.8}}, "origins": 7, "from": "2015-06-01",
              "accuracy": 0.8, "macro_f1": 0.79, "roc_auc": 0.85, "examples": 872}

    def fake_rnnkit(args, threads, what):
        calls.append(list(args))
        return "log line\n" + json.dumps(report) + "\n"

    cfg = {"global_step": 42, "metrics": {"val_loss": 1.5, "val_bpc": 2.16, "val_accuracy": 0.9},
           "data": {"sizes": {"val": 100}}}
    monkeypatch.setattr(E, "_rnnkit", fake_rnnkit)
    monkeypatch.setattr(E, "_saved", lambda out: cfg)
    q = E.QUALITY[section]
    monkeypatch.setattr(E, "quality_plan", lambda q: (8, 1000, {"gru": {"hidden": 8, "layers": 1, "encoder_params": 1000},
                                                                "tcn": {"hidden": 9, "layers": 3, "encoder_params": 990}}))
    out = E.quality(q, 0.5, threads=1)
    verbs = [c[0] for c in calls]
    trains = [c for c in calls if c[0] == "train"]
    assert [c[1] for c in trains] == [q.task] * 2 and all(q.flags[0] in c and "--max-time" in c for c in trains)
    assert trains[1][trains[1].index("--hidden") + 1] == "9" and trains[1][trains[1].index("--layers") + 1] == "3"
    assert verbs == (["train"] if not q.score else ["train", q.score[0]]) * 2
    assert out["minutes"] == 0.5 and out["target_encoder_params"] == 1000 and list(out["results"]) == ["gru", "tcn"]
    r = out["results"]["tcn"]
    assert r["steps"] == 42 and r["hidden"] == 9 and r["encoder_params"] == 990
    want = {"charlm": {"val_nats_per_char": 1.5, "val_bits_per_char": 2.16},
            "forecast": {"test_mase": 0.9, "test_mae": 2.0, "test_rmse": 2.5},
            "sst2": {"dev_accuracy": 0.8, "dev_macro_f1": 0.79, "dev_roc_auc": 0.85, "val_accuracy": 0.9}}[section]
    assert {k: r[k] for k in want} == want
    if section == "forecast":
        assert out["naive"] == {"test_mase": 1.0, "test_mae": 2.2, "test_rmse": 2.8} and out["origins"] == 7
    if section == "sst2":
        assert out["dev_sentences"] == 872 and out["val_phrases"] == 100 and out["embedding_dim"] == 8


def test_quick_run_never_starts_the_quality_sections(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("a quality section ran under --quick")

    for f in ("quality", "adding"):
        monkeypatch.setattr(E, f, boom)
    payload = E.run(quick=True, B=2, H=8, headline_T=16, positions=(1, 3), sections=E.SECTIONS)
    assert not set(E.QUALITY_SECTIONS) & set(payload)
