"""Forecast heads, metrics and baselines: exact values on tiny inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rnnkit.data import timeseries as ts
from rnnkit.tasks import forecast as fc
from rnnkit.tasks import forecast_baselines as fb

from tests.fixtures.forecast import daily_frame, write

MODEL = {"encoder": "gru", "hidden_size": 8, "num_layers": 1, "dropout": 0.0, "head": "point", "loss": "mse",
         "quantiles": "0.1,0.5,0.9"}


def small(tmp_path, **kw):
    d = {"data": str(write(daily_frame(n=120), tmp_path / "s.csv")), "time": "date", "target": "temp",
         "lookback": 6, "horizon": 3, "covariates": "humidity,wind"}
    d.update(kw)
    return ts.build(ts.resolve_spec(d))


def test_zero_head_on_levels_is_the_naive_forecast(tmp_path):
    data = small(tmp_path)
    enc, task = fc.build_for(MODEL, data)
    torch.nn.init.zeros_(task.head.weight), torch.nn.init.zeros_(task.head.bias)
    pred = fc.run_windows(enc, task, data, "test")
    w = data.windows["test"]
    yhat = np.stack([data.to_units(s, e, pred["mean"][i]) for i, (s, e) in enumerate(w)])
    np.testing.assert_allclose(yhat, fb.naive(data, "test"), rtol=1e-5)


def test_zero_head_on_log_returns_is_the_naive_forecast(tmp_path):
    data = small(tmp_path, transform="logret")
    enc, task = fc.build_for(MODEL, data)
    assert task.skip_index == []  # outputs are cumulative changes: no skip needed
    torch.nn.init.zeros_(task.head.weight), torch.nn.init.zeros_(task.head.bias)
    pred = fc.run_windows(enc, task, data, "val")
    w = data.windows["val"]
    yhat = np.stack([data.to_units(s, e, pred["mean"][i]) for i, (s, e) in enumerate(w)])
    np.testing.assert_allclose(yhat, fb.naive(data, "val"), rtol=1e-6)


def test_gaussian_nll_matches_torch_distributions():
    task = fc.ForecastTask(3, 4, horizon=2, n_targets=1, head="gaussian")
    y = torch.randn(5, 7, 4)
    x = torch.randn(5, 7, 3)
    target = torch.randn(5, 2, 1)
    loss, _ = task.loss(y, {"x": x, "y": target})
    out = task.raw(y, x)
    dist = torch.distributions.Normal(out[..., 0], torch.nn.functional.softplus(out[..., 1]) + 1e-3)
    assert loss.item() == pytest.approx(-dist.log_prob(target).mean().item(), rel=1e-5)
    pred = task.predict(y, x, (0.1, 0.5, 0.9))
    np.testing.assert_allclose(pred["q"][..., 1], pred["mean"], rtol=1e-9)
    np.testing.assert_allclose(pred["q"][..., 2] - pred["mean"], 1.2815515655 * pred["sigma"], rtol=1e-6)


def test_quantile_loss_is_the_pinball_loss():
    task = fc.ForecastTask(2, 3, horizon=1, n_targets=1, head="quantile", quantiles=(0.2, 0.8))
    with torch.no_grad():
        task.head.weight.zero_()
        task.head.bias.copy_(torch.tensor([0.0, 1.0]))
    y, x = torch.zeros(1, 2, 3), torch.zeros(1, 2, 2)
    loss, _ = task.loss(y, {"x": x, "y": torch.tensor([[[0.5]]])})
    # e = 0.5 - 0 for tau .2: .2*.5 = .1 ; e = 0.5 - 1 for tau .8: (.8-1)*-.5 = .1
    assert loss.item() == pytest.approx(0.1)


def test_event_head_is_binary_cross_entropy():
    task = fc.ForecastTask(2, 3, horizon=0, n_targets=0, event=True)
    y, x = torch.randn(4, 5, 3), torch.randn(4, 5, 2)
    label = torch.tensor([0.0, 1.0, 1.0, 0.0])
    loss, m = task.loss(y, {"x": x, "event": label})
    p = torch.sigmoid(task.raw(y, x))
    ref = -(label * torch.log(p) + (1 - label) * torch.log(1 - p)).mean()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5) and m["tokens"] == 4
    assert m[task.rate_unit] == 4  # training speed counts windows


def test_point_metrics_by_hand():
    y = np.array([[[2.0]], [[4.0]]])
    yhat = np.array([[[3.0]], [[2.0]]])
    m = fc.point_metrics(y, yhat, np.array([[[2.0]], [[2.0]]]))
    assert m["mae"] == 1.5 and m["rmse"] == pytest.approx(math.sqrt(2.5)) and m["mase"] == 0.75
    assert m["smape"] == pytest.approx(100 * (2 / 5 + 4 / 6) / 2)
    assert fc.direction_accuracy(y, yhat, np.array([[[1.0]], [[3.0]]])) == 0.5


def test_event_metrics_and_reliability():
    label = np.array([0, 0, 1, 1.0])
    prob = np.array([0.1, 0.4, 0.35, 0.8])
    m = fc.event_metrics(label, prob)
    assert m["brier"] == pytest.approx(np.mean((prob - label) ** 2))
    assert m["roc_auc"] == pytest.approx(0.75)
    rel = fc.reliability(label, prob, bins=2)
    assert [r["count"] for r in rel] == [3, 1] and rel[1]["observed"] == 1.0


def test_interval_coverage():
    y = np.array([[[1.0]], [[5.0]]])
    q = np.array([[[[0.0, 1.0, 2.0]]], [[[0.0, 1.0, 2.0]]]])
    m = fc.interval_metrics(y, q, (0.1, 0.5, 0.9))
    assert m["coverage"] == 0.5 and m["nominal_coverage"] == pytest.approx(0.8)


def test_baselines_by_hand(tmp_path):
    df = daily_frame(n=60)
    df["temp"] = np.arange(60, dtype=float) ** 1.5  # a smooth trend
    data = ts.build(ts.resolve_spec({"data": str(write(df, tmp_path / "b.csv")), "time": "date", "target": "temp",
                                     "lookback": 4, "horizon": 2}))
    s, e = data.windows["test"][0]
    y = data.series[0].y[:, 0]
    np.testing.assert_allclose(fb.naive(data, "test")[0, :, 0], [y[e], y[e]])
    slope = (y[e] - y[0]) / e
    np.testing.assert_allclose(fb.drift(data, "test")[0, :, 0], [y[e] + slope, y[e] + 2 * slope])
    np.testing.assert_allclose(fb.seasonal_naive(data, "test", 7)[0, :, 0], [y[e - 6], y[e - 5]])
    vs = np.datetime64(data.state["val_start"])
    tr = y[data.series[0].times < vs]
    assert fb.naive_scale(data, "test")[0, 0, 0] == pytest.approx(np.mean(np.abs(np.diff(tr))))


def test_arima_rolling_origin_uses_only_the_past(tmp_path):
    rng = np.random.default_rng(1)
    n = 160
    v = np.zeros(n)
    for i in range(1, n):
        v[i] = 0.8 * v[i - 1] + rng.standard_normal()
    df = daily_frame(n=n)
    df["temp"] = v + 20
    p = write(df, tmp_path / "ar.csv")
    data = ts.build(ts.resolve_spec({"data": str(p), "time": "date", "target": "temp", "lookback": 4, "horizon": 1}))
    f, orders = fb.arima(data, "test", order=(1, 0, 0))
    assert orders == {"temp/temp": [1, 0, 0]}  # a single series is named after its target
    # changing the data after an origin must not change that origin's forecast
    df2 = df.copy()
    e0 = data.windows["test"][0, 1]
    df2.loc[e0 + 1:, "temp"] += 50
    data2 = ts.build(ts.resolve_spec({"data": str(write(df2, tmp_path / "ar2.csv")), "time": "date", "target": "temp",
                                      "lookback": 4, "horizon": 1}))
    f2, _ = fb.arima(data2, "test", order=(1, 0, 0))
    assert f2[0, 0, 0] == pytest.approx(f[0, 0, 0])
    # the one-step forecast of a fitted AR(1) is mu + phi (y_t - mu), with parameters from the training part
    from statsmodels.tsa.arima.model import ARIMA

    ser = data.series[0]
    ytr = ser.y[ser.times < np.datetime64(data.state["val_start"]), 0]
    mu, phi = ARIMA(ytr, order=(1, 0, 0), trend="c").fit().params[:2]
    ends = data.windows["test"][:, 1]
    np.testing.assert_allclose(f[:, 0, 0], mu + phi * (ser.y[ends, 0] - mu), rtol=1e-6)


def test_autoregressive_rollout_feeds_its_own_predictions(tmp_path):
    data = ts.build(ts.resolve_spec({"data": str(write(daily_frame(n=120), tmp_path / "r.csv")), "time": "date",
                                     "target": "temp", "lookback": 6, "horizon": 3, "transform": "diff"}))
    torch.manual_seed(0)
    enc, task = fc.build_for({**MODEL, "multistep": "autoregressive"}, data)
    assert task.horizon == 1 and task.rollout_horizon == 3
    enc.eval(), task.eval()
    w = data.windows["test"][:2]
    x = torch.from_numpy(data.batch(np.arange(2), "test")["x"])
    out = fc.rollout(enc, task, x, data, w)["mean"]  # (2, 3, 1) cumulative changes / scale
    # by hand: step 1 on x, then append (o1 - mean/scale, calendar of t+1) and predict again
    o1 = task.raw(enc(x)[0], x)[:, 0, :, 0]
    mean, scale = data.target_scale(0)
    cal = np.stack([ts.calendar_features(np.array(ts.future_times(data.series[0].times[e], "D", 1),
                                                  dtype="datetime64[ns]"), "D")[0] for _, e in w])
    row = torch.cat([o1 - torch.tensor(mean / scale, dtype=x.dtype), torch.tensor(cal, dtype=x.dtype)], 1)
    x2 = torch.cat([x[:, 1:], row[:, None]], 1)
    o2 = task.raw(enc(x2)[0], x2)[:, 0, :, 0]
    np.testing.assert_allclose(out[:, 0, 0], o1[:, 0].detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(out[:, 1, 0], (o1 + o2)[:, 0].detach().numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(Exception, match="--multistep autoregressive"):
        fc.build_for({**MODEL, "multistep": "autoregressive"}, small(tmp_path))  # has covariates


@pytest.mark.parametrize("name", sorted(__import__("rnnkit.layers", fromlist=["ENCODERS"]).ENCODERS))
def test_every_encoder_drives_every_head(name):
    from rnnkit.layers import build_encoder

    torch.manual_seed(0)
    enc = build_encoder(name, 3, 8)
    x = torch.randn(2, 6, 3)
    for head in ("point", "gaussian", "quantile"):
        task = fc.ForecastTask(3, enc.output_size, horizon=2, n_targets=1, head=head, skip_index=[0])
        y, _ = enc(x)
        loss, _ = task.loss(y, {"x": x, "y": torch.randn(2, 2, 1)})
        loss.backward()
        assert torch.isfinite(loss) and task.head.weight.grad.abs().sum() > 0
        assert task.predict(y, x)["mean"].shape == (2, 2, 1)


def test_quantile_head_reports_its_own_outermost_levels():
    task = fc.ForecastTask(2, 3, horizon=1, n_targets=1, head="quantile", quantiles=(0.25, 0.5, 0.75))
    assert fb.interval_levels(task) == (0.25, 0.5, 0.75)
    assert fb.interval_levels(fc.ForecastTask(2, 3, horizon=1, n_targets=1, head="gaussian")) == (0.1, 0.5, 0.9)
    with torch.no_grad():
        task.head.weight.zero_()
        task.head.bias.copy_(torch.tensor([3.0, 1.0, 2.0]))  # crossing quantiles are sorted
    q = task.predict(torch.zeros(1, 2, 3), torch.zeros(1, 2, 2), (0.25, 0.5, 0.75))["q"]
    np.testing.assert_allclose(q[0, 0, 0], [1.0, 2.0, 3.0])


def test_linear_skip_adds_a_linear_model_of_the_last_row():
    task = fc.ForecastTask(3, 4, horizon=0, n_targets=0, event=True, linear_skip=True)
    x, y = torch.randn(5, 6, 3), torch.randn(5, 6, 4)
    np.testing.assert_allclose(task.raw(y, x).detach(), task.head(y[:, -1])[:, 0].detach(), rtol=1e-6)  # starts at 0
    with torch.no_grad():
        task.head.weight.zero_(), task.head.bias.fill_(0.5)
        task.linear.weight.copy_(torch.tensor([[1.0, -2.0, 0.0]]))
    expect = 0.5 + x[:, -1, 0] - 2 * x[:, -1, 1]
    np.testing.assert_allclose(task.raw(y, x).detach(), expect, rtol=1e-6)
