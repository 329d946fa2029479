"""Second routes to the same answer: chunks with carried state, padding, directions, steps."""

import numpy as np
import pytest

from rnnkit.reference import (GRU, LSTM, RecurrentSpec, gru_step_forward, init_params,
                              layer_forward, lstm_step_forward, recurrent_backward,
                              recurrent_forward, relative_error, rnn_step_forward, spec_from_params,
                              zero_state)
from .helpers import as_tuple, make_problem

CELLS = ["rnn", "rnn-relu", "lstm", "gru"]


@pytest.mark.parametrize("cell", CELLS)
def test_two_chunks_with_carried_state_equal_one_sequence(cell):
    spec = RecurrentSpec(cell, 3, 4, num_layers=2)
    params, x, state0, gy, gstate = make_problem(spec, B=2, T=7, seed=4)
    s0 = state0[0] if len(state0) == 1 else state0
    g_final = gstate[0] if len(gstate) == 1 else gstate
    y, state, cache = recurrent_forward(spec, params, x, s0)
    y1, state1, cache1 = recurrent_forward(spec, params, x[:, :3], s0)
    y2, state2, cache2 = recurrent_forward(spec, params, x[:, 3:], state1)  # carried state
    np.testing.assert_array_equal(np.concatenate([y1, y2], axis=1), y)
    for a, b in zip(as_tuple(state2), as_tuple(state)):
        np.testing.assert_array_equal(a, b)

    # full BPTT across the chunk boundary: chunk 2's dL/d(initial state) feeds chunk 1
    dx, dstate0, grads, dh = recurrent_backward(gy, g_final, cache)
    dx2, dmid, grads2, dh2 = recurrent_backward(gy[:, 3:], g_final, cache2)
    dx1, dstate0_1, grads1, dh1 = recurrent_backward(gy[:, :3], dmid, cache1)
    assert relative_error(np.concatenate([dx1, dx2], axis=1), dx) <= 1e-12
    assert relative_error(np.concatenate([dh1, dh2], axis=2), dh) <= 1e-12
    for a, b in zip(as_tuple(dstate0_1), as_tuple(dstate0)):
        assert relative_error(a, b) <= 1e-12
    for n in grads:
        assert relative_error(grads1[n] + grads2[n], grads[n]) <= 1e-12

    # truncated BPTT: chunk 1 receives no gradient from chunk 2, so its dh is the local one
    _, _, _, dh1_trunc = recurrent_backward(gy[:, :3], None, cache1)
    assert not np.allclose(dh1_trunc, dh1)
    np.testing.assert_array_equal(dh2, dh[:, :, 3:])


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padded_batch_equals_unpadded_sequences(cell, bidirectional):
    spec = RecurrentSpec(cell, 2, 3, num_layers=2, bidirectional=bidirectional)
    lengths = np.array([4, 1, 3])
    params, x, state0, gy, _ = make_problem(spec, B=3, T=4, seed=5, lengths=lengths)
    x[np.arange(4)[None, :] >= lengths[:, None]] = 1e3  # garbage in the padding must not matter
    s0 = state0[0] if len(state0) == 1 else state0
    y, state, cache = recurrent_forward(spec, params, x, s0, lengths)
    dx, dstate0, grads, _ = recurrent_backward(gy, None, cache)
    total = {n: np.zeros_like(g) for n, g in grads.items()}
    for b, n_b in enumerate(lengths):
        sb = tuple(s[:, b:b + 1] for s in state0)
        yb, stateb, cb = recurrent_forward(spec, params, x[b:b + 1, :n_b], sb[0] if len(sb) == 1 else sb)
        assert relative_error(y[b:b + 1, :n_b], yb) <= 1e-12
        assert np.all(y[b, n_b:] == 0)
        for a, c in zip(as_tuple(state), as_tuple(stateb)):
            assert relative_error(a[:, b:b + 1], c) <= 1e-12
        dxb, d0b, gb, _ = recurrent_backward(gy[b:b + 1, :n_b], None, cb)
        assert relative_error(dx[b:b + 1, :n_b], dxb) <= 1e-12
        for a, c in zip(as_tuple(dstate0), as_tuple(d0b)):
            assert relative_error(a[:, b:b + 1], c) <= 1e-12
        for n in total:
            total[n] += gb[n]
    for n in total:
        assert relative_error(grads[n], total[n]) <= 1e-12


@pytest.mark.parametrize("cell", CELLS)
def test_bidirectional_equals_forward_plus_reversed_pass(cell):
    spec = RecurrentSpec(cell, 3, 4, bidirectional=True)
    params, x, _, _, _ = make_problem(spec, B=2, T=5, seed=6)
    y, state, _ = recurrent_forward(spec, params, x)
    fwd = RecurrentSpec(cell, 3, 4)
    back = {n.replace("_reverse", ""): p for n, p in params.items() if n.endswith("_reverse")}
    yf, sf, _ = recurrent_forward(fwd, {n: p for n, p in params.items() if "_reverse" not in n}, x)
    yb, sb, _ = recurrent_forward(fwd, back, x[:, ::-1])
    np.testing.assert_allclose(y, np.concatenate([yf, yb[:, ::-1]], axis=2), rtol=0, atol=1e-14)
    for s, a, b in zip(as_tuple(state), as_tuple(sf), as_tuple(sb)):
        np.testing.assert_allclose(s, np.concatenate([a, b]), rtol=0, atol=1e-14)


def test_step_functions_equal_the_equations():
    rng = np.random.default_rng(7)
    B, C, H = 2, 3, 4
    x, h, c = rng.standard_normal((B, C)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    w_ih, w_hh = rng.standard_normal((4 * H, C)), rng.standard_normal((4 * H, H))
    b_ih, b_hh = rng.standard_normal(4 * H), rng.standard_normal(4 * H)
    a = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    i, f, g, o = sig(a[:, :H]), sig(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), sig(a[:, 3 * H:])
    h1, c1, _ = lstm_step_forward(x, h, c, w_ih, w_hh, b_ih, b_hh)
    np.testing.assert_allclose(c1, f * c + i * g, atol=1e-14)
    np.testing.assert_allclose(h1, o * np.tanh(f * c + i * g), atol=1e-14)
    w_ih, w_hh, b_ih, b_hh = w_ih[:3 * H], w_hh[:3 * H], b_ih[:3 * H], b_hh[:3 * H]
    gi, gh = x @ w_ih.T + b_ih, h @ w_hh.T + b_hh
    r, z = sig(gi[:, :H] + gh[:, :H]), sig(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])  # reset gate on W_hn h + b_hn
    h1, _ = gru_step_forward(x, h, w_ih, w_hh, b_ih, b_hh)
    np.testing.assert_allclose(h1, (1 - z) * n + z * h, atol=1e-14)
    w_ih, w_hh, b_ih, b_hh = w_ih[:H], w_hh[:H], b_ih[:H], b_hh[:H]
    h1, _ = rnn_step_forward(x, h, w_ih, w_hh, b_ih, b_hh, "relu")
    np.testing.assert_array_equal(h1, np.maximum(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh, 0))


def test_layer_forward_reads_state_tuple_and_extreme_inputs_stay_finite():
    rng = np.random.default_rng(8)
    spec = RecurrentSpec("lstm", 2, 3)
    params = init_params(spec, rng)
    x = rng.standard_normal((1, 4, 2)) * 1e4  # saturating gates: no overflow warnings, no nan
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y, state, _ = layer_forward(LSTM, x, (np.zeros((1, 3)), np.zeros((1, 3))),
                                    tuple(params[n] for n in spec.names()))
    assert np.isfinite(y).all() and len(state) == 2
    assert GRU.gates == 3 and LSTM.n_state == 2


def test_spec_state_and_validation():
    spec = RecurrentSpec("gru", 3, 4, num_layers=2, bidirectional=True)
    params = init_params(spec, np.random.default_rng(0))
    assert spec_from_params("gru", params) == spec
    assert list(params) == spec.names()
    assert params["weight_ih_l1_reverse"].shape == (12, 8)
    assert zero_state(spec, 5).shape == (4, 5, 4)
    h, c = zero_state(RecurrentSpec("lstm", 3, 4), 2)
    assert h.shape == c.shape == (1, 2, 4)
    x = np.zeros((2, 3, 3))
    with pytest.raises(ValueError, match="lengths"):
        recurrent_forward(spec, params, x, lengths=np.array([0, 3]))
    with pytest.raises(ValueError, match="input features"):
        recurrent_forward(spec, params, np.zeros((2, 3, 5)))
    with pytest.raises(TypeError, match="one array"):
        recurrent_forward(spec, params, x, state=(np.zeros((4, 2, 4)),) * 2)
    with pytest.raises(ValueError, match="cell"):
        RecurrentSpec("transformer", 3, 4)
