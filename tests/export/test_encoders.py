"""The encoder x task matrix of docs/export.md: each variant (random weights, the trained
checkpoint's data config) exports and passes the self-check against torch (max abs diff
<= 1e-4 on synthetic inputs of mixed lengths, identical greedy decodes), or is refused."""

from __future__ import annotations

import pytest

from rnnkit.export.onnx_export import export_onnx
from tests.export.conftest import variant

RECURRENT = ["lstm", "gru", "rnn", "rnn-relu", "hand-lstm", "hand-gru", "hand-rnn"]

CASES = [
    *[("charlm", dict(encoder=e)) for e in RECURRENT],
    *[("sentiment", dict(encoder=e, bidirectional=True, pooling="last")) for e in RECURRENT],
    ("sentiment", dict(encoder="lstm", bidirectional=False, pooling="attention", num_layers=2)),
    ("sentiment", dict(encoder="hand-gru", bidirectional=True, pooling="mean", num_layers=2)),
    ("sentiment", dict(encoder="tcn", bidirectional=False, pooling="max", num_layers=2)),
    ("sentiment", dict(encoder="transformer", bidirectional=True, pooling="mean", num_layers=1)),
    ("sentiment", dict(encoder="transformer", bidirectional=False, pooling="last", num_layers=1)),
    ("forecast", dict(encoder="lstm", head="gaussian", num_layers=2)),
    ("forecast", dict(encoder="hand-lstm", head="quantile", quantiles="0.05,0.5,0.95")),
    ("forecast", dict(encoder="rnn", head="point", multistep="autoregressive")),
    ("forecast", dict(encoder="tcn", head="point", num_layers=2)),
    ("forecast", dict(encoder="transformer", head="quantile", num_layers=1)),
    ("asr", dict(encoder="gru", bidirectional=True, num_layers=2, subsample=2)),
    ("asr", dict(encoder="hand-lstm", bidirectional=True, subsample=1)),
    ("asr", dict(encoder="rnn", bidirectional=False)),
    ("asr", dict(encoder="tcn", bidirectional=False, num_layers=2)),
    ("asr", dict(encoder="transformer", bidirectional=True, num_layers=1)),
    ("seq2seq", dict(encoder="lstm", decoder="gru", attention="multiplicative", input_feeding=False)),
    ("seq2seq", dict(encoder="hand-gru", decoder="hand-lstm", decoder_layers=2, input_feeding=True)),
    ("seq2seq", dict(encoder="gru", decoder="rnn", tie_weights=False, input_feeding=True)),
    ("seq2seq", dict(encoder="transformer", bidirectional=True, num_layers=1, decoder="lstm")),
    ("seq2seq", dict(encoder="tcn", bidirectional=False, num_layers=2, decoder="gru", input_feeding=False)),
]
FAST = {0, 4, 8, 14, 19, 23, 26}  # one or two per task run by default; the rest are marked slow


def _id(case):
    task, m = case
    return f"{task}-" + "-".join(f"{v}" for v in m.values())


@pytest.mark.parametrize("task,model", [c if i in FAST else pytest.param(*c, marks=pytest.mark.slow)
                                        for i, c in enumerate(CASES)], ids=[_id(c) for c in CASES])
def test_variant_exports_and_passes_self_check(trained, tmp_path, task, model):
    ck = variant(trained[task], tmp_path / "ck", seed=len(str(model)), **model)
    section = export_onnx(ck, tmp_path / "out")
    check = section["self_check"]
    assert check["max_abs_diff"] <= 1e-4
    assert check.get("greedy_identical", True) is True
    assert section["encoder"] == model["encoder"]
    assert section["traced_encoder"] == model["encoder"].replace("hand-", "")
