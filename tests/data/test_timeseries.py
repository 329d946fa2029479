"""Time-series tables: sorting, duplicates, gaps, frequencies, splits, scalers, windows, leakage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rnnkit.data import timeseries as ts
from rnnkit.errors import ConfigError, DataError

from tests.fixtures.forecast import daily_frame, write


def spec(path, **kw):
    d = {"data": str(path), "time": "date", "target": "temp", "lookback": 5, "horizon": 2}
    d.update(kw)
    return ts.resolve_spec(d)


def test_rows_in_any_order_are_sorted_within_each_series(tmp_path):
    ordered = ts.build(spec(write(daily_frame(groups=("A", "B")), tmp_path / "a.csv"), group="site"))
    shuffled = ts.build(spec(write(daily_frame(groups=("A", "B"), shuffle=True), tmp_path / "b.csv"), group="site"))
    assert [s.name for s in shuffled.series] == ["A", "B"]
    for a, b in zip(ordered.series, shuffled.series):
        assert (np.diff(b.times.astype("int64")) > 0).all()
        np.testing.assert_array_equal(a.y, b.y)
        np.testing.assert_allclose(a.feats, b.feats)


def test_duplicate_timestamp_is_refused_naming_rows(tmp_path):
    df = daily_frame()
    df = pd.concat([df, df.iloc[[10]]], ignore_index=True)
    with pytest.raises(DataError, match=r"duplicate timestamp 2020-01-11 \(rows 12, 202\)"):
        ts.build(spec(write(df, tmp_path / "d.csv")))


def test_scalers_are_fitted_on_the_training_part_only(tmp_path):
    df = daily_frame(n=200)
    base = ts.build(spec(write(df, tmp_path / "a.csv")))
    df2 = df.copy()
    after = pd.to_datetime(df2["date"]) >= pd.Timestamp(base.state["val_start"])
    df2.loc[after, "temp"] += 1000.0  # a huge shift in the future must not move the scaler
    moved = ts.build(spec(write(df2, tmp_path / "b.csv")))
    assert moved.state["scalers"] == base.state["scalers"]
    train = df[~after]
    assert moved.state["scalers"][moved.series[0].name]["mean"][0] == pytest.approx(train["temp"].mean())
    assert moved.state["scalers"][moved.series[0].name]["scale"][0] == pytest.approx(train["temp"].std(ddof=0))


def test_split_is_chronological_and_training_labels_precede_validation(tmp_path):
    d = ts.build(spec(write(daily_frame(n=200), tmp_path / "a.csv")))
    vs, te = np.datetime64(d.state["val_start"]), np.datetime64(d.state["test_start"])
    times = d.series[0].times
    tr, va, tt = (d.windows[k][:, 1] for k in ("train", "val", "test"))
    assert (times[tr + 2] < vs).all()  # the last label of a training window is before validation
    assert (times[va] >= vs).all() and (times[va + 2] < te).all()
    assert (times[tt] >= te).all()
    assert len(tr) and len(va) and len(tt)


def test_windows_never_cross_a_gap_or_a_series(tmp_path):
    df = daily_frame(n=120, groups=("A", "B"))
    df = df[~df["date"].isin(["2020-02-10", "2020-02-11"])]  # a 3-day step in both series
    d = ts.build(spec(write(df, tmp_path / "g.csv"), group="site", lookback=4, horizon=1))
    for split in ("train", "val", "test"):
        for s, e in d.windows[split]:
            seg = d.series[s].segment
            assert seg[e - 3] == seg[e + 1]
    gap_end = np.datetime64("2020-02-12")
    ser = d.series[0]
    i = int(np.flatnonzero(ser.times == gap_end)[0])
    assert ser.segment[i] == ser.segment[i - 1] + 1
    # --max-gap 3 keeps the series whole
    d3 = ts.build(spec(write(df, tmp_path / "g.csv"), group="site", lookback=4, horizon=1, max_gap=3))
    assert d3.series[0].segment.max() == 0


def test_business_days_are_a_regular_calendar():
    t = pd.bdate_range("2021-01-01", periods=60).to_numpy()
    t = np.delete(t, 20)  # a market holiday
    assert ts.infer_freq(t) == "B"
    steps = ts.steps_between(t, "B")
    assert steps.max() == 2 and (steps[steps != 2] == 1).all()  # weekends are not gaps
    assert ts.infer_freq(pd.date_range("2000-01-01", periods=30, freq="MS").to_numpy()) == "M"
    assert ts.infer_freq(pd.date_range("2000-01-01", periods=30, freq="h").to_numpy()) == "h"
    assert [str(x.date()) for x in ts.future_times(pd.Timestamp("2021-01-08"), "B", 2)] == ["2021-01-11", "2021-01-12"]


def test_categorical_covariate_is_one_hot_encoded(tmp_path):
    d = ts.build(spec(write(daily_frame(), tmp_path / "a.csv"), covariates="humidity,wind"))
    assert d.state["categories"] == {"wind": ["E", "N", "S", "W"]}
    names = d.feature_names
    assert names[:2] == ["temp", "humidity"] and names[2:6] == ["wind=E", "wind=N", "wind=S", "wind=W"]
    onehot = d.series[0].feats[:, 2:6]
    np.testing.assert_array_equal(onehot.sum(axis=1), 1.0)


def test_missing_category_is_no_category_not_the_previous_one(tmp_path):
    # e.g. no wind direction is recorded on a calm morning: filling in yesterday's would invent one
    df = daily_frame()
    df.loc[[0, 30], "wind"] = np.nan
    p = write(df, tmp_path / "c.csv")
    with pytest.raises(DataError, match=r"column 'wind' is missing at row 2; choose --missing"):
        ts.build(spec(p, covariates="wind"))
    for policy in ("ffill", "interpolate"):
        d = ts.build(spec(p, covariates="wind", missing=policy))
        onehot = d.series[0].feats[:, 1:5]
        assert np.isfinite(onehot).all()
        np.testing.assert_array_equal(onehot[[0, 30]], 0.0)
        np.testing.assert_array_equal(np.delete(onehot, [0, 30], axis=0).sum(axis=1), 1.0)
        assert len(d.windows["train"]) == len(ts.build(spec(write(daily_frame(), tmp_path / "f.csv"),
                                                            covariates="wind", missing=policy)).windows["train"])


def test_missing_values_policies(tmp_path):
    df = daily_frame()
    df.loc[30, "humidity"] = np.nan
    p = write(df, tmp_path / "m.csv")
    with pytest.raises(DataError, match=r"column 'humidity' is missing at row 32; choose --missing"):
        ts.build(spec(p, covariates="humidity"))
    ff = ts.build(spec(p, covariates="humidity", missing="ffill"))
    it = ts.build(spec(p, covariates="humidity", missing="interpolate"))
    sc = ff.state["scalers"][ff.series[0].name]
    raw_ff = ff.series[0].feats[30, 1] * sc["scale"][1] + sc["mean"][1]
    raw_it = it.series[0].feats[30, 1] * it.state["scalers"][it.series[0].name]["scale"][1] + it.state["scalers"][it.series[0].name]["mean"][1]
    assert raw_ff == pytest.approx(df.loc[29, "humidity"], abs=1e-3)
    assert raw_it == pytest.approx((df.loc[29, "humidity"] + df.loc[31, "humidity"]) / 2, abs=1e-3)


def test_missing_target_is_never_a_label(tmp_path):
    df = daily_frame()
    df.loc[40, "temp"] = np.nan
    d = ts.build(spec(write(df, tmp_path / "m.csv"), missing="ffill", horizon=1))
    for split in ("train", "val", "test"):
        for _, e in d.windows[split]:
            assert e + 1 != 40 and e != 40  # neither the origin value nor the label is the imputed one


def test_event_threshold_label_is_read_at_t_plus_horizon(tmp_path):
    df = daily_frame()
    d = ts.build(ts.resolve_spec({"data": str(write(df, tmp_path / "e.csv")), "time": "date",
                                  "event": "precip>0", "horizon": 1, "covariates": "humidity,precip", "lookback": 3}))
    s, e = d.windows["train"][5]
    b = d.batch(np.array([5]), "train")
    assert b["event"][0] == float(df.loc[e + 1, "precip"] > 0)
    # inputs end at row e: the label's source value (row e + 1) is not in them
    sc = d.state["scalers"][d.series[0].name]
    last_precip = b["x"][0, -1, 1] * sc["scale"][1] + sc["mean"][1]
    assert last_precip == pytest.approx(df.loc[e, "precip"], abs=1e-3)


def test_yes_no_event_with_horizon_zero(tmp_path):
    df = daily_frame()
    d = ts.build(ts.resolve_spec({"data": str(write(df, tmp_path / "e.csv")), "time": "date",
                                  "event": "rain", "horizon": 0, "covariates": "humidity", "lookback": 3}))
    s, e = d.windows["val"][0]
    assert d.batch(np.array([0]), "val")["event"][0] == float(df.loc[e, "rain"] == "Yes")


def test_wide_format_makes_one_series_per_column(tmp_path):
    df = daily_frame()
    df["other"] = df["temp"] * 2 + 1
    d = ts.build(spec(write(df, tmp_path / "w.csv"), target="temp,other", wide=True))
    assert [s.name for s in d.series] == ["other", "temp"]  # series are ordered by name
    np.testing.assert_allclose(d.series[0].y[:, 0], df["other"].to_numpy())
    # per-series scalers make the two standardised series identical
    np.testing.assert_allclose(d.series[0].feats[:, 0], d.series[1].feats[:, 0], atol=1e-5)


def test_transforms_round_trip_to_original_units(tmp_path):
    p = write(daily_frame(), tmp_path / "t.csv")
    for tr in ("levels", "diff", "logret"):
        d = ts.build(spec(p, transform=tr, horizon=3))
        s, e = d.windows["val"][4]
        target = d.output_targets(s, e, 3)
        np.testing.assert_allclose(d.to_units(s, e, target), d.series[s].y[e + 1:e + 4], rtol=1e-9)


@pytest.mark.parametrize("kw, err, msg", [
    ({"horizon": -1}, ConfigError, r"--horizon must be >= 0"),
    ({"lookback": 0}, ConfigError, r"--lookback must be >= 1"),
    ({"covariates": "temp"}, ConfigError, r"'temp' is both a --target and a --covariate"),
    ({"target": "wind"}, DataError, r"target column 'wind' is not numeric \('.' at row 2\)"),
    ({"covariates": "nosuch"}, DataError, r"column 'nosuch' not found"),
    ({"lookback": 400}, DataError, r"no training window: the series has 200 rows .* needs --lookback 400"),
])
def test_bad_options(tmp_path, kw, err, msg):
    with pytest.raises(err, match=msg):
        ts.build(spec(write(daily_frame(), tmp_path / "x.csv"), **kw))


def test_bad_tables(tmp_path):
    df = daily_frame()
    bad_date = df.copy()
    bad_date.loc[7, "date"] = "2020-13-45"
    with pytest.raises(DataError, match=r"cannot parse '2020-13-45' as a date \(row 9\)"):
        ts.build(spec(write(bad_date, tmp_path / "a.csv")))
    nan_col = df.copy()
    nan_col["humidity"] = np.nan
    with pytest.raises(DataError, match=r"column 'humidity' is entirely missing"):
        ts.build(spec(write(nan_col, tmp_path / "b.csv"), covariates="humidity"))
    const = df.copy()
    const["humidity"] = 3.0
    with pytest.raises(DataError, match=r"column 'humidity' is constant in the training part"):
        ts.build(spec(write(const, tmp_path / "c.csv"), covariates="humidity"))
    with pytest.raises(ConfigError, match=r"--horizon 0 would read its own label"):
        ts.resolve_spec({"data": "x.csv", "time": "date", "event": "precip>0", "horizon": 0, "covariates": "precip"})


def test_saved_state_refuses_unseen_series_and_categories(tmp_path):
    d = ts.build(spec(write(daily_frame(groups=("A", "B")), tmp_path / "a.csv"), group="site", covariates="wind"))
    other = daily_frame(groups=("C",))
    with pytest.raises(DataError, match=r"series 'C' was never seen in training \(known: A, B\)"):
        ts.build(spec(write(other, tmp_path / "b.csv"), group="site", covariates="wind"), saved=d.state)
    newcat = daily_frame(groups=("A",))
    newcat.loc[150, "wind"] = "NNE"
    with pytest.raises(DataError, match=r"category 'NNE' at row 152 that the model never saw"):
        ts.build(spec(write(newcat, tmp_path / "c.csv"), group="site", covariates="wind"), saved=d.state)


def test_a_short_series_among_long_ones_is_named(tmp_path):
    df = pd.concat([daily_frame(n=100, groups=("A",)), daily_frame(n=5, groups=("B",))], ignore_index=True)
    with pytest.raises(DataError, match=r"series 'B' has 5 rows, fewer than --lookback 5 \+ --horizon 2 = 7"):
        ts.build(spec(write(df, tmp_path / "s.csv"), group="site"))


def test_offline_named_sets():
    sw = ts.build(ts.resolve_spec({"data": "seattle-weather"}))
    assert len(sw.series) == 1 and sw.series[0].freq == "D" and len(sw.series[0].times) == 1461
    assert sw.state["categories"]["weather"] == ["drizzle", "fog", "rain", "snow", "sun"]
    st = ts.build(ts.resolve_spec({"data": "stocks", "lookback": 12}))
    assert [s.name for s in st.series] == ["AAPL", "AMZN", "GOOG", "IBM", "MSFT"]
    assert {s.freq for s in st.series} == {"M"}


SHARED = __import__("pathlib").Path(__file__).resolve().parents[3] / "shared" / "datasets"


@pytest.mark.skipif(not (SHARED / "weather-aus").is_dir(), reason="../shared/datasets/weather-aus absent")
def test_weather_aus_rain_tomorrow_never_sees_next_days_rainfall():
    d = ts.build(ts.resolve_spec({"data": "weather-aus", "lookback": 3}))
    raw = pd.read_csv(SHARED / "weather-aus" / "weatherAUS-albury.csv")
    j = d.feature_names.index("Rainfall")
    sc = d.state["scalers"][d.series[0].name]
    ser = d.series[0]
    for s, e in d.windows["test"][:50]:
        row = int(ser.rows[e]) - 2  # CSV line -> frame index
        b_last = ser.feats[e, j] * sc["scale"][j] + sc["mean"][j]
        if not np.isnan(raw.loc[row, "Rainfall"]):
            assert b_last == pytest.approx(raw.loc[row, "Rainfall"], abs=1e-3)  # today's rainfall, not tomorrow's
        assert ser.event[e] == float(raw.loc[row, "RainTomorrow"] == "Yes")
    assert "RainTomorrow" not in " ".join(d.feature_names)
    assert d.state["test_start"].startswith("2016-06-26")


@pytest.mark.skipif(not (SHARED / "stocks-daily").is_dir(), reason="../shared/datasets/stocks-daily absent")
def test_stocks_daily_is_five_business_day_series():
    d = ts.build(ts.resolve_spec({"data": "stocks-daily"}))
    assert sorted(s.name for s in d.series) == ["AAPL", "GSPC", "IBM", "MSFT", "SBUX"]
    assert {s.freq for s in d.series} == {"B"} and max(s.segment.max() for s in d.series) == 0  # no gaps


# -- presets next to explicit flags (issue 19, item 5) -----------------------------------------
def test_an_explicit_event_replaces_the_presets_target():
    spec = ts.resolve_spec({"data": "seattle-weather", "event": "precipitation>0"})
    assert spec.event == "precipitation>0" and spec.targets == [] and spec.horizon == 1
    assert "precipitation" in spec.covariates  # its past values stay an input (the label is at t + 1)


def test_an_explicit_target_replaces_the_presets_event_and_its_horizon():
    spec = ts.resolve_spec({"data": "weather-aus", "target": "MaxTemp"})
    assert spec.event is None and spec.targets == ["MaxTemp"] and spec.horizon == 1
    assert "MaxTemp" not in spec.covariates and "Humidity3pm" in spec.covariates


def test_a_preset_covariate_that_becomes_the_target_leaves_the_covariates():
    spec = ts.resolve_spec({"data": "seattle-weather", "target": "temp_min"})
    assert spec.targets == ["temp_min"] and spec.covariates == ["precipitation", "wind", "weather"]
    spec = ts.resolve_spec({"data": "weather-aus", "event": "RainToday"})
    assert spec.event == "RainToday" and "RainToday" not in spec.covariates and spec.horizon == 1


def test_a_group_replaces_the_presets_wide_format():
    spec = ts.resolve_spec({"data": "stocks-daily", "target": "MSFT", "group": "Name"})
    assert spec.group == "Name" and not spec.wide


def test_two_explicit_flags_that_contradict_each_other_are_still_an_error():
    with pytest.raises(ConfigError, match="--event and --target exclude each other"):
        ts.resolve_spec({"data": "seattle-weather", "event": "precipitation>0", "target": "temp_max"})
    with pytest.raises(ConfigError, match="both a --target and a --covariate"):
        ts.resolve_spec({"data": "seattle-weather", "target": "wind", "covariates": "wind"})
