"""Gradient flow, unrolling, gates, spectra and clipping measurements."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit.diagnostics import (clip_and_measure, gate_stats, gradient_flow, numpy_gradient_flow,
                                output_gradient, scale_spectral_radius, spectral_radius, to_numpy, unroll)
from rnnkit.diagnostics.experiments import gradients_experiment
from rnnkit.layers import build_encoder

NAMES = ["rnn", "rnn-relu", "lstm", "gru", "hand-lstm", "hand-gru"]


def _setup(name, layers=2, bidirectional=True, seed=0):
    torch.manual_seed(seed)
    enc = build_encoder(name, 3, 5, num_layers=layers, bidirectional=bidirectional).double()
    x = torch.randn(4, 7, 3, dtype=torch.float64)
    lengths = torch.tensor([7, 3, 5, 1])
    return enc, x, lengths


@pytest.mark.parametrize("name", NAMES)
def test_unroll_equals_encoder(name):
    enc, x, lengths = _setup(name)
    for ln in (None, lengths):
        y, state = enc(x, None, ln)
        tr = unroll(enc, x, None, ln)
        torch.testing.assert_close(tr.y, y, rtol=0, atol=1e-12)
        for a, b in zip(state if isinstance(state, tuple) else (state,),
                        tr.state if isinstance(tr.state, tuple) else (tr.state,)):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_torch_flow_equals_numpy_bptt(name):
    enc, x, lengths = _setup(name)
    v = torch.randn(10, dtype=torch.float64)

    def loss_fn(y):
        return (y[:, -1] * v).sum() + 0.1 * (y ** 2).sum()

    for ln in (None, lengths):
        flow = gradient_flow(enc, x, loss_fn, lengths=ln)
        spec, params = to_numpy(enc)
        dy = output_gradient(enc, x, loss_fn, lengths=ln)
        ref = numpy_gradient_flow(spec, params, x.numpy(), dy, lengths=None if ln is None else ln.numpy())
        assert flow.norms.shape == ref.norms.shape == (4, 7)
        assert np.max(np.abs(flow.norms - ref.norms)) <= 1e-10 * np.max(ref.norms)
        if ln is not None:  # row 3 has length 1: only t = 0 is real for it; all rows pad past 7
            assert np.all(flow.norms >= 0)


def test_flow_at_last_step_is_the_readout():
    """Loss = sum_b v . y_b(T-1): dL/dh_{T-1} = v for every row, so its norm is ||v|| sqrt(B)."""
    enc, x, _ = _setup("lstm", layers=1, bidirectional=False)
    v = torch.randn(5, dtype=torch.float64)
    flow = gradient_flow(enc, x, lambda y: (y[:, -1] * v).sum())
    assert flow.norms[0, -1] == pytest.approx(float(v.norm()) * 2.0, rel=1e-12)
    assert np.all(flow.norms[0, :-1] < flow.norms[0, -1])  # strictly decaying at init


def test_flow_leaves_parameter_grads_alone():
    enc, x, _ = _setup("gru")
    gradient_flow(enc, x, lambda y: y.sum())
    assert all(p.grad is None for p in enc.parameters())


def test_lstm_keeps_gradient_60_steps_back_where_tanh_rnn_loses_it():
    """The issue's assertion: T = 200, H = 64, loss on the last step, standard initialisation."""
    res = gradients_experiment(("rnn", "lstm"), seq_len=200, hidden=64, batch_size=32, train_steps=0,
                               lag=60, numpy_check=False)
    rnn, lstm = res["cells"]["rnn"]["init"]["lag"], res["cells"]["lstm"]["init"]["lag"]
    assert rnn > 0 and lstm > 0
    assert lstm / rnn >= 1e6, (lstm, rnn)
    assert res["lstm_over_rnn_at_lag_init"] == pytest.approx(lstm / rnn)


def test_experiment_numpy_check_agrees():
    res = gradients_experiment(("rnn", "gru"), seq_len=20, hidden=8, batch_size=4, train_steps=3, lag=5)
    for rec in res["cells"].values():
        assert rec["numpy_max_rel_diff"] < 1e-9
        assert len(rec["train_loss"]) == 3 and len(rec["trained"]["norms"]) == 20


def test_gate_saturation_follows_the_bias():
    torch.manual_seed(0)
    enc = build_encoder("lstm", 3, 6)
    x = torch.randn(2, 9, 3)
    H = 6
    with torch.no_grad():
        enc.bias_ih_l0[H:2 * H] = 20.0  # forget gate ~ 1
        enc.bias_ih_l0[:H] = -20.0  # input gate ~ 0
    st = gate_stats(enc, x)["l0"]
    assert st["forget"]["high"] == 1.0 and st["forget"]["low"] == 0.0
    assert st["input"]["low"] == 1.0 and st["input"]["high"] == 0.0
    assert 0.0 <= st["output"]["low"] <= 1.0 and st["output"]["mean"] == pytest.approx(
        float(unroll(enc, x).gates[0]["output"].detach().mean()))
    gru = build_encoder("gru", 3, 4, num_layers=2, bidirectional=True)
    gs = gate_stats(gru, x, lengths=torch.tensor([9, 2]))
    assert set(gs) == {"l0", "l0_reverse", "l1", "l1_reverse"} and set(gs["l0"]) == {"reset", "update"}
    assert gate_stats(build_encoder("rnn", 3, 4), x) == {}


def test_gate_stats_exclude_padding():
    torch.manual_seed(0)
    enc = build_encoder("gru", 2, 4)
    x = torch.randn(1, 6, 2)
    padded = torch.cat([x, 100 * torch.ones(1, 4, 2)], 1)
    a = gate_stats(enc, x)["l0"]
    b = gate_stats(enc, padded, lengths=torch.tensor([6]))["l0"]
    for gate in ("reset", "update"):
        assert a[gate] == pytest.approx(b[gate], abs=1e-7)
    assert gate_stats(enc, padded)["l0"]["update"] != pytest.approx(a["update"], abs=1e-7)


def test_spectral_radius_and_scaling():
    enc = build_encoder("rnn", 2, 4)
    with torch.no_grad():
        enc.weight_hh_l0.copy_(torch.diag(torch.tensor([0.5, -2.0, 1.0, 0.1])))
    assert spectral_radius(enc)["l0"]["h"] == pytest.approx(2.0)
    scale_spectral_radius(enc.weight_hh_l0, 1.5)
    assert spectral_radius(enc)["l0"]["h"] == pytest.approx(1.5)
    lstm = build_encoder("lstm", 2, 4, num_layers=2)
    sr = spectral_radius(lstm)
    assert set(sr) == {"l0", "l1"} and set(sr["l0"]) == {"i", "f", "g", "o"}
    w = lstm.weight_hh_l1.detach().double()[8:12]
    assert sr["l1"]["g"] == pytest.approx(float(torch.linalg.eigvals(w).abs().max()))


def test_clip_and_measure():
    p = torch.nn.Parameter(torch.zeros(3))
    q = torch.nn.Parameter(torch.zeros(2))
    p.grad, q.grad = torch.tensor([3.0, 0.0, 0.0]), torch.tensor([0.0, 4.0])
    r = clip_and_measure([("p", p), ("q", q)], clip_norm=1.0)
    assert r.fired and r.total_before == pytest.approx(5.0) and r.total_after == pytest.approx(1.0, rel=1e-5)
    assert r.before == pytest.approx({"p": 3.0, "q": 4.0}) and r.after["q"] == pytest.approx(0.8, rel=1e-5)
    r = clip_and_measure([("p", p), ("q", q)], clip_norm=10.0)
    assert not r.fired and r.total_after == pytest.approx(r.total_before)
    p.grad = torch.tensor([3.0, -0.5, 0.1])
    r = clip_and_measure([("p", p)], clip_value=1.0)
    assert r.fired and p.grad.tolist() == pytest.approx([1.0, -0.5, 0.1])
    assert not clip_and_measure([("p", p)], clip_value=2.0).fired
