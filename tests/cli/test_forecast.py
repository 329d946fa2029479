"""`rnnkit train forecast`, `rnnkit backtest`, `rnnkit forecast`: end to end and bad input."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from rnnkit.cli.main import main

from tests.fixtures.forecast import daily_frame, write

TINY = ["--hidden", "8", "--lookback", "6", "--batch-size", "16", "--max-steps", "30", "--val-every", "15",
        "--checkpoint-every", "30", "--warmup-steps", "3", "--no-progress", "--logger", "none", "--threads", "1"]


def one_line_error(capsys, argv, pattern):
    try:
        code = main(argv)
    except SystemExit as e:  # argparse refused an option (the ranges of rnnkit.limits)
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert pattern in err, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fc")
    csv_path = write(daily_frame(n=160, groups=("A", "B")), tmp / "d.csv")
    out = tmp / "ck"
    code = main(["train", "forecast", "--data", str(csv_path), "--time", "date", "--target", "temp", "--group", "site",
                 "--covariates", "humidity,wind", "--horizon", "3", "--head", "gaussian", "--out", str(out), *TINY])
    assert code == 0
    return tmp, csv_path, out


def test_train_backtest_forecast(trained, capsys):
    tmp, csv_path, out = trained
    capsys.readouterr()
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["task"] == "forecast" and cfg["data"]["series"] == ["A", "B"]
    assert set(cfg["data"]["scalers"]) == {"A", "B"} and cfg["data"]["categories"] == {"wind": ["E", "N", "S", "W"]}
    assert "val_mase" in cfg["metrics"]
    assert main(["backtest", str(out), "--json", "--season", "7", "--arima", "1,0,0",
                 "--output", str(tmp / "bt.csv"), "--plot", str(tmp / "bt.png")]) == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(rep["models"]) == {"model", "naive", "drift", "seasonal_naive_7", "arima"}
    m = rep["models"]["model"]
    assert 0 <= m["coverage"] <= 1 and m["nominal_coverage"] == pytest.approx(0.8) and m["mase"] > 0
    assert rep["origins"] > 0 and rep["horizon"] == 3 and len(rep["mase_by_step"]["model"]) == 3
    rows = list(csv.DictReader(open(tmp / "bt.csv")))
    assert len(rows) == rep["origins"] * 3 and (tmp / "bt.png").stat().st_size > 1000
    assert main(["forecast", str(out), "--output", str(tmp / "f.csv"), "--plot", str(tmp / "f.png")]) == 0
    rows = list(csv.DictReader(open(tmp / "f.csv")))
    assert [(r["series"], r["step"]) for r in rows] == [(s, str(k)) for s in "AB" for k in (1, 2, 3)]
    assert rows[0]["time"] == "2020-06-09" and rows[0]["origin"] == "2020-06-08"
    for r in rows:
        assert float(r["lower"]) <= float(r["median"]) <= float(r["upper"]) and float(r["interval"]) == 0.8
    assert (tmp / "f.png").stat().st_size > 1000


def test_evaluate_dispatches_to_the_backtest(trained, capsys):
    _, _, out = trained
    capsys.readouterr()
    assert main(["evaluate", str(out), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "arima" in rep["models"] and "naive" in rep["models"]


def test_forecast_time_bad_input(trained, capsys, tmp_path):
    _, _, out = trained
    capsys.readouterr()
    df = daily_frame(n=160, groups=("A", "B"))
    one_line_error(capsys, ["forecast", str(out), "--data", str(write(df.drop(columns=["wind"]), tmp_path / "a.csv"))],
                   "column 'wind' not found")
    new_series = daily_frame(n=160, groups=("A", "Z"))
    one_line_error(capsys, ["forecast", str(out), "--data", str(write(new_series, tmp_path / "b.csv"))],
                   "series 'Z' was never seen in training")
    cat = df.copy()
    cat.loc[5, "wind"] = "NNE"
    one_line_error(capsys, ["backtest", str(out), "--data", str(write(cat, tmp_path / "c.csv"))],
                   "category 'NNE' at row 7 that the model never saw")
    short = daily_frame(n=4, groups=("A", "B"), start="2020-07-01")
    one_line_error(capsys, ["forecast", str(out), "--data", str(write(short, tmp_path / "d.csv"))],
                   "has 4 rows, fewer than the model's lookback 6")
    one_line_error(capsys, ["backtest", str(out), "--data", str(write(short, tmp_path / "d.csv"))],
                   "no complete test window")
    one_line_error(capsys, ["backtest", str(out), "--arima", "1,x"], "--arima must be auto, none or p,d,q")


@pytest.mark.parametrize("extra, pattern", [
    (["--horizon", "-1"], "--horizon must be >= 0"),
    (["--lookback", "0"], "--lookback must be >= 1"),
    (["--covariates", "temp"], "'temp' is both a --target and a --covariate"),
    (["--target", "wind"], "target column 'wind' is not numeric"),
    (["--lookback", "500"], "no training window"),
])
def test_train_bad_options(tmp_path, capsys, extra, pattern):
    p = write(daily_frame(n=100), tmp_path / "x.csv")
    one_line_error(capsys, ["train", "forecast", "--data", str(p), "--time", "date", "--target", "temp",
                            "--out", str(tmp_path / "o"), *TINY, *extra], pattern)


def test_train_bad_tables(tmp_path, capsys):
    df = daily_frame(n=100)
    base = ["train", "forecast", "--time", "date", "--target", "temp", "--out", str(tmp_path / "o"), *TINY]
    bad = df.copy()
    bad.loc[3, "date"] = "not a date"
    one_line_error(capsys, base + ["--data", str(write(bad, tmp_path / "a.csv"))], "cannot parse 'not a date' as a date (row 5)")
    dup = df.copy()
    dup.loc[3, "date"] = dup.loc[2, "date"]
    one_line_error(capsys, base + ["--data", str(write(dup, tmp_path / "b.csv"))], "duplicate timestamp 2020-01-03")
    nan = df.copy()
    nan["humidity"] = np.nan
    one_line_error(capsys, base + ["--data", str(write(nan, tmp_path / "c.csv")), "--covariates", "humidity"],
                   "column 'humidity' is entirely missing")
    const = df.copy()
    const["humidity"] = 1.0
    one_line_error(capsys, base + ["--data", str(write(const, tmp_path / "d.csv")), "--covariates", "humidity"],
                   "column 'humidity' is constant in the training part")


def test_backtest_on_recent_rows_only_matches_the_full_history(trained, capsys, tmp_path):
    """The MASE scale and the scalers come from the checkpoint, so scoring a CSV of the
    recent rows gives the model exactly the numbers it gets on the full file."""
    tmp, csv_path, out = trained
    capsys.readouterr()
    assert main(["backtest", str(out), "--json", "--arima", "none"]) == 0
    full = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    df = daily_frame(n=160, groups=("A", "B"))
    recent = df[df["date"] >= "2020-04-20"]  # only the last ~40 days of each series
    assert main(["backtest", str(out), "--json", "--arima", "none", "--data", str(write(recent, tmp_path / "r.csv"))]) == 0
    part = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert part["origins"] == full["origins"]
    assert part["models"]["model"]["mase"] == pytest.approx(full["models"]["model"]["mase"], rel=1e-6)
    assert part["models"]["naive"]["mae"] == pytest.approx(full["models"]["naive"]["mae"], rel=1e-9)


def test_resume_is_exact(tmp_path, capsys):
    from safetensors.numpy import load_file

    df = daily_frame(n=120)
    df.loc[115, "wind"] = "NNE"  # first seen in the test part: no category, in the first run and on resume alike
    p = write(df, tmp_path / "x.csv")
    args = ["train", "forecast", "--data", str(p), "--time", "date", "--target", "temp", "--covariates", "wind",
            "--hidden", "8", "--lookback", "5", "--batch-size", "8", "--val-every", "6", "--checkpoint-every", "6",
            "--warmup-steps", "2", "--no-progress", "--logger", "none", "--threads", "1", "--dropout", "0.2",
            "--schedule", "constant"]  # the same LR plan whether or not the run is split
    assert main(args + ["--out", str(tmp_path / "one"), "--max-steps", "12"]) == 0
    assert main(args + ["--out", str(tmp_path / "two"), "--max-steps", "6"]) == 0
    assert main(["train", "forecast", "--resume", str(tmp_path / "two"), "--max-steps", "12", "--no-progress",
                 "--logger", "none", "--threads", "1"]) == 0
    a, b = load_file(tmp_path / "one" / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_a_flag_overrides_the_presets_value_and_speed_is_in_windows(tmp_path, capsys):
    """Issue 19: `--data seattle-weather --event 'precipitation>0'` failed with '--event and
    --target exclude each other' although only the preset named a target."""
    out = tmp_path / "rain"
    argv = ["train", "forecast", "--data", "seattle-weather", "--event", "precipitation>0", "--out", str(out),
            "--hidden", "8", "--lookback", "6", "--batch-size", "16", "--max-steps", "4", "--val-every", "2",
            "--log-every", "2", "--warmup-steps", "1", "--no-progress", "--logger", "none", "--threads", "1"]
    assert main(argv) == 0
    cap = capsys.readouterr()
    assert cap.out.startswith("done: step 4, checkpoint") and "val_auc" in cap.out
    lines = [line for line in cap.err.splitlines() if line.startswith("step ")]
    assert len(lines) == 2 and all(" windows/s  " in line for line in lines), cap.err
    from rnnkit import checkpoint as C

    spec = C.read_config(out)["data"]["spec"]
    assert spec["event"] == "precipitation>0" and spec["targets"] == []


def test_diagnose_a_forecast_checkpoint(trained, tmp_path, capsys):
    _, _, out = trained
    assert main(["diagnose", "gradients", str(out), "--out", str(tmp_path / "g"), "--threads", "1"]) == 0
    res = json.loads((tmp_path / "g" / "gradients.json").read_text())
    assert res["setup"]["task"] == "forecast" and res["setup"]["seq_len"] == 6  # --lookback 6
    assert [len(r["norms"]) for r in res["layers"].values()] == [6]
    assert main(["diagnose", "exploding", str(out), "--steps", "3", "--out", str(tmp_path / "e"), "--threads", "1"]) == 0
    runs = json.loads((tmp_path / "e" / "exploding.json").read_text())["runs"]
    assert all(r["steps_run"] == 3 for r in runs.values())
    capsys.readouterr()
    one_line_error(capsys, ["diagnose", "gradients", str(out), "--data", "x.txt", "--out", str(tmp_path / "d")],
                   "--data picks the text of a charlm checkpoint; a forecast checkpoint is probed on its own")


def test_a_single_series_is_named_after_its_target(tmp_path, capsys):
    """#19.6: `--series temp` finds the one series of an ungrouped table (it was called 'series')."""
    data = write(daily_frame(n=120), tmp_path / "one.csv")
    out = tmp_path / "o"
    assert main(["train", "forecast", "--data", str(data), "--time", "date", "--target", "temp",
                 "--out", str(out), *TINY]) == 0
    capsys.readouterr()
    assert main(["forecast", str(out), "--series", "temp", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["series"] == "temp"
