"""``fit`` / ``transform`` of forecasting data: the state comes from the training rows only,
and transform with a state refits nothing."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.data import timeseries as ts
from rnnkit.errors import DataError

from tests.fixtures.forecast import daily_frame


def _spec(**kw):
    d = {"data": "table", "time": "date", "target": "temp", "group": "site", "covariates": "humidity,wind",
         "lookback": 5, "val_start": "2020-05-01", "test_start": "2020-06-01"}
    return ts.resolve_spec({**d, **kw})


def test_rows_after_the_validation_start_never_change_the_state():
    spec = _spec()
    frame = daily_frame(n=200, groups=("A", "B"))
    late = frame.copy()
    after = late["date"] >= "2020-05-01"
    late.loc[after, "temp"] *= 10
    late.loc[after, "humidity"] += 100
    late.loc[after, "wind"] = "NNE"  # a category first seen in the validation part
    a, b = ts.fit(frame, spec), ts.fit(late, spec)
    assert a["scalers"] == b["scalers"] and a["categories"] == b["categories"] == {"wind": ["E", "N", "S", "W"]}
    assert a["naive_mae"] == b["naive_mae"] and a["val_start"] == b["val_start"]


def test_transform_with_a_state_refits_nothing():
    spec = _spec()
    train = daily_frame(n=200, groups=("A", "B"))
    state = ts.fit(train, spec)
    shifted = train.copy()
    shifted["temp"] += 1.0  # a table with other values: scaled with the training scalers, not its own
    data = ts.transform(shifted, spec, state)
    base = ts.transform(train, spec, state)
    _, scale = base.target_scale(0)
    np.testing.assert_allclose(data.series[0].feats[:, 0] - base.series[0].feats[:, 0], 1.0 / scale[0], rtol=1e-5)
    assert data.state["scalers"] == state["scalers"]


def test_an_unseen_category_is_no_category_in_training_and_refused_at_inference():
    spec = _spec(covariates="wind")
    frame = daily_frame(n=200, groups=("A",))
    frame.loc[180, "wind"] = "NNE"  # test part only
    trained = ts.fit_transform(frame, spec)
    row = trained.series[0].feats[180]
    wind = [i for i, n in enumerate(trained.feature_names) if n.startswith("wind=")]
    assert row[wind].tolist() == [0.0] * 4
    again = ts.transform(frame, spec, trained.state, training=True)  # a resumed run
    np.testing.assert_array_equal(again.series[0].feats, trained.series[0].feats)
    with pytest.raises(DataError, match=r"category 'NNE' at row 182 that the model never saw"):
        ts.transform(frame, spec, trained.state)
