"""The encoder contract (rnnkit.layers.base) for every registered recurrent encoder.

Equivalences: two chunks with carried state == one whole sequence; a step() loop == forward();
bidirectional == forward pass + reversed pass of unidirectional encoders. Plus shapes, clear
errors, LSTM forget-gate bias, dropout modes, the registry, and the state helpers.
"""

from __future__ import annotations

import re

import pytest
import torch
from torch import Tensor

from rnnkit.layers import ENCODERS, build_encoder, detach_state, map_state

from .helpers import (ALL_NAMES, B, C, CELLS, H, LENGTHS, T, TOL, make_pair, n_state,
                      random_state, reverse_within, state_parts)


def make(name: str, num_layers: int = 2, bidirectional: bool = False, **kw):
    torch.manual_seed(0)
    return build_encoder(name, C, H, num_layers=num_layers, bidirectional=bidirectional,
                         **kw).double()


def x64(batch: int = B, steps: int = T, seed: int = 1) -> Tensor:
    return torch.randn(batch, steps, C, dtype=torch.float64,
                       generator=torch.Generator().manual_seed(seed))


def max_diff(a, b) -> float:
    return max((p - q).abs().max().item() for p, q in zip(state_parts(a), state_parts(b)))


# -- equivalences -----------------------------------------------------------------------------
@pytest.mark.parametrize("split", [1, 4])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "given-state"])
@pytest.mark.parametrize("name", ALL_NAMES)
def test_two_chunks_with_carried_state_equal_one_sequence(name, with_state, split):
    enc = make(name, num_layers=2)
    x = x64()
    s0 = random_state(name, 2, False) if with_state else None
    with torch.no_grad():
        y, s = enc(x, s0)
        y1, s1 = enc(x[:, :split], s0)
        y2, s2 = enc(x[:, split:], s1)
    assert max_diff(torch.cat([y1, y2], 1), y) <= TOL
    assert max_diff(s2, s) <= TOL


@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "given-state"])
@pytest.mark.parametrize("name", ALL_NAMES)
def test_step_loop_equals_forward(name, with_state):
    enc = make(name, num_layers=2)
    x = x64()
    s0 = random_state(name, 2, False) if with_state else None
    with torch.no_grad():
        y, s = enc(x, s0)
        state, ys = s0, []
        for t in range(T):
            y_t, state = enc.step(x[:, t], state)
            assert y_t.shape == (B, H)
            ys.append(y_t)
    assert max_diff(torch.stack(ys, 1), y) <= TOL
    assert max_diff(state, s) <= TOL
    assert type(state) is type(s)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_step_on_bidirectional_raises(name):
    enc = make(name, num_layers=1, bidirectional=True)
    with pytest.raises(ValueError, match="causal"):
        enc.step(x64()[:, 0])


@pytest.mark.parametrize("num_layers", [1, 2], ids=["L1", "L2"])
@pytest.mark.parametrize("name", ALL_NAMES)
def test_bidirectional_is_forward_plus_reversed_pass(name, num_layers):
    """Each layer: concat(fwd(x), rev(bwd(rev(x)))) with reversal inside each row's length."""
    bi = make(name, num_layers=num_layers, bidirectional=True)
    sd = bi.state_dict()
    x, lengths = x64(), torch.tensor(LENGTHS)
    with torch.no_grad():
        y_bi, s_bi = bi(x, lengths=lengths)
        inp, finals = x, []
        for k in range(num_layers):
            in_size = C if k == 0 else 2 * H
            halves = []
            for d, suffix in enumerate([f"_l{k}", f"_l{k}_reverse"]):
                uni = build_encoder(name, in_size, H, num_layers=1).double()
                uni.load_state_dict({f"{w}_l0": sd[f"{w}{suffix}"]
                                     for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
                seq = inp if d == 0 else reverse_within(inp, LENGTHS)
                y, s = uni(seq, lengths=lengths)
                halves.append(y if d == 0 else reverse_within(y, LENGTHS))
                finals.append(state_parts(s))
            inp = torch.cat(halves, -1)  # (B, T, 2H)
    assert max_diff(inp, y_bi) <= TOL
    for i, part in enumerate(state_parts(s_bi)):  # (L*2, B, H), direction fastest
        assert max_diff(torch.cat([f[i] for f in finals]), part) <= TOL


# -- shapes and sizes -------------------------------------------------------------------------
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2], ids=["L1", "L2"])
@pytest.mark.parametrize("name", ALL_NAMES)
def test_shapes(name, num_layers, bidirectional):
    enc = build_encoder(name, C, H, num_layers=num_layers, bidirectional=bidirectional)
    D = 2 if bidirectional else 1
    assert enc.input_size == C and enc.output_size == H * D
    assert enc.carries_state is True
    x = torch.randn(B, T, C)
    for lengths in (None, torch.tensor(LENGTHS)):
        y, state = enc(x, lengths=lengths)
        assert y.shape == (B, T, enc.output_size)
        parts = state_parts(state)
        assert isinstance(state, tuple) == name.endswith("lstm")
        assert len(parts) == n_state(name)
        assert all(p.shape == (num_layers * D, B, H) for p in parts)
    init = enc.initial_state(B)
    assert all(p.shape == (num_layers * D, B, H) and not p.any() for p in state_parts(init))


@pytest.mark.parametrize("cell", CELLS)
def test_hand_and_fused_share_parameter_names(cell):
    fused, hand = make_pair(cell, num_layers=2, bidirectional=True)
    assert {k: v.shape for k, v in fused.state_dict().items()} == \
        {k: v.shape for k, v in hand.state_dict().items()}
    assert isinstance(fused, {"rnn": torch.nn.RNN, "rnn-relu": torch.nn.RNN,
                              "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell])


# -- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL_NAMES)
def test_bad_inputs_raise_clear_errors(name):
    enc = make(name, num_layers=1)
    x = x64()
    with pytest.raises(ValueError, match=r"\(B, T, C\)"):
        enc(x[0])
    with pytest.raises(ValueError, match=f"expected {C} input features, got {C + 1}"):
        enc(torch.randn(B, T, C + 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="lengths must have shape"):
        enc(x, lengths=torch.tensor([T, T]))
    with pytest.raises(ValueError, match="lengths must have shape"):
        enc(x, lengths=torch.full((B, 1), T))
    with pytest.raises(ValueError, match=re.escape(f"lengths must lie in [1, {T}]")):
        enc(x, lengths=torch.tensor([T, 0, 2]))
    with pytest.raises(ValueError, match=re.escape(f"lengths must lie in [1, {T}]")):
        enc(x, lengths=torch.tensor([T + 1, 1, 2]))
    with pytest.raises(ValueError, match="x_t of shape"):
        enc.step(x)  # (B, T, C) is not one step
    with pytest.raises(ValueError, match="x_t of shape"):
        enc.step(torch.randn(B, C + 1, dtype=torch.float64))


@pytest.mark.parametrize("name", ALL_NAMES)
def test_wrong_state_kind_raises(name):
    enc = make(name, num_layers=1)
    h = torch.zeros(1, B, H, dtype=torch.float64)
    wrong = h if name.endswith("lstm") else (h, h)
    with pytest.raises(TypeError, match="state must be"):
        enc(x64(), wrong)


@pytest.mark.parametrize("name", ["lstm", "hand-gru"])
def test_bad_sizes_raise(name):
    with pytest.raises(ValueError, match=">= 1"):
        build_encoder(name, C, 0)
    with pytest.raises(ValueError, match="dropout"):
        build_encoder(name, C, H, num_layers=2, dropout=1.0)


def test_unknown_encoder_name_lists_the_choices():
    with pytest.raises(ValueError) as info:
        build_encoder("lstmm", C, H)
    message = str(info.value)
    assert "'lstmm'" in message
    for name in ENCODERS:
        assert name in message
    assert set(ALL_NAMES) <= set(ENCODERS)


def test_unknown_nonlinearity_raises():
    from rnnkit.layers import RNN, HandRNN
    for cls in (RNN, HandRNN):
        with pytest.raises(ValueError, match="nonlinearity"):
            cls(C, H, nonlinearity="sigmoid")


# -- LSTM forget-gate bias --------------------------------------------------------------------
@pytest.mark.parametrize("name", ["lstm", "hand-lstm"])
def test_lstm_forget_bias(name):
    def totals(enc):
        sd = enc.state_dict()
        for k in range(2):
            for sfx in (f"_l{k}", f"_l{k}_reverse"):
                b = sd[f"bias_ih{sfx}"] + sd[f"bias_hh{sfx}"]  # (4H,) gates i, f, g, o
                yield b[:H], b[H:2 * H], b[2 * H:]

    default = build_encoder(name, C, H, num_layers=2, bidirectional=True)
    for i_g, f_g, rest in totals(default):
        assert torch.equal(f_g, torch.ones(H))
        assert not torch.equal(i_g, torch.ones(H)) and not torch.equal(rest, torch.ones(2 * H))

    from rnnkit.layers import HandLSTM, LSTM
    cls = LSTM if name == "lstm" else HandLSTM
    for i_g, f_g, _ in totals(cls(C, H, num_layers=2, bidirectional=True, forget_bias=2.0)):
        assert torch.allclose(f_g, torch.full((H,), 2.0))
    torch.manual_seed(0)
    for _, f_g, _ in totals(cls(C, H, num_layers=2, bidirectional=True, forget_bias=None)):
        assert f_g.abs().max() < 2 * H ** -0.5 + 1e-6 and not torch.equal(f_g, torch.ones(H))


# -- dropout ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL_NAMES)
def test_dropout_only_in_train_mode(name):
    enc = make(name, num_layers=2, dropout=0.5)
    plain = make(name, num_layers=2, dropout=0.0)
    plain.load_state_dict(enc.state_dict())
    x = x64()
    with torch.no_grad():
        enc.eval()
        y_eval, s_eval = enc(x)
        assert torch.equal(enc(x)[0], y_eval)  # deterministic
        y_plain, s_plain = plain(x)
        assert max_diff(y_eval, y_plain) <= TOL and max_diff(s_eval, s_plain) <= TOL

        enc.train()
        torch.manual_seed(5)
        y_train, s_train = enc(x)
        assert max_diff(y_train, y_eval) > 1e-3
        # the first layer's state is computed before any dropout
        assert max_diff(state_parts(s_train)[0][0], state_parts(s_eval)[0][0]) <= TOL

        plain.train()  # no dropout: train mode == eval mode
        assert max_diff(plain(x)[0], y_plain) <= TOL


@pytest.mark.parametrize("name", ALL_NAMES)
def test_step_dropout_only_in_train_mode(name):
    enc = make(name, num_layers=2, dropout=0.5)
    x_t = x64()[:, 0]
    with torch.no_grad():
        enc.eval()
        y_eval, _ = enc.step(x_t)
        assert torch.equal(enc.step(x_t)[0], y_eval)
        assert max_diff(y_eval, enc(x_t[:, None])[0][:, 0]) <= TOL
        enc.train()
        torch.manual_seed(5)
        assert max_diff(enc.step(x_t)[0], y_eval) > 1e-3


def test_single_layer_has_no_dropout():
    """Dropout acts between layers, so one layer ignores it (and torch does not warn)."""
    for name in ("lstm", "hand-lstm"):
        assert build_encoder(name, C, H, num_layers=1, dropout=0.5).dropout == 0.0


# -- state helpers ----------------------------------------------------------------------------
def test_map_state_on_every_state_kind():
    h = torch.ones(2, 3)
    assert map_state(lambda t: t * 2, None) is None
    assert torch.equal(map_state(lambda t: t * 2, h), 2 * h)
    pair = map_state(lambda t: t + 1, (h, 3 * h))
    assert isinstance(pair, tuple) and len(pair) == 2
    assert torch.equal(pair[0], 2 * h) and torch.equal(pair[1], 4 * h)
    listed = map_state(lambda t: -t, [h, (h, h)])
    assert isinstance(listed, list) and isinstance(listed[1], tuple)
    assert torch.equal(listed[1][0], -h)
    cache = map_state(lambda t: t[:1], {"k": h, "v": (h,)})
    assert cache["k"].shape == (1, 3) and cache["v"][0].shape == (1, 3)
    with pytest.raises(TypeError, match="unsupported state type"):
        map_state(lambda t: t, 1.0)


def test_detach_state_cuts_the_graph_and_keeps_values():
    w = torch.ones(3, requires_grad=True)
    h, c = w * 2, w * 3
    assert detach_state(None) is None
    d = detach_state(h)
    assert not d.requires_grad and d.grad_fn is None and torch.equal(d, h)
    pair = detach_state((h, c))
    assert isinstance(pair, tuple)
    assert all(not p.requires_grad for p in pair)
    assert torch.equal(pair[0], h) and torch.equal(pair[1], c)
    assert h.requires_grad  # the original is untouched


@pytest.mark.parametrize("name", ["lstm", "hand-gru"])
def test_detached_carried_state_stops_gradients_at_the_chunk_boundary(name):
    """Truncated BPTT: after detach_state the second chunk's loss reaches only its own inputs."""
    enc = make(name, num_layers=2)
    x = x64().requires_grad_(True)
    _, s1 = enc(x[:, :3])
    y2, _ = enc(x[:, 3:], detach_state(s1))
    y2.sum().backward()
    assert torch.equal(x.grad[:, :3], torch.zeros_like(x.grad[:, :3]))
    assert x.grad[:, 3:].abs().max() > 0


def test_state_batch_select_picks_rows_of_dim_1():
    from rnnkit.layers.base import state_batch_select
    h = torch.arange(2 * 3 * 4.0).reshape(2, 3, 4)  # (L*D, B, H)
    idx = torch.tensor([2, 0])
    h_sel, c_sel = state_batch_select((h, -h), idx)
    assert torch.equal(h_sel, h[:, [2, 0]]) and torch.equal(c_sel, -h[:, [2, 0]])
    assert state_batch_select(None, idx) is None


# -- outputs(): y without the final state --------------------------------------------------------
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_outputs_equal_forward_outputs_values_and_gradients(name, bidirectional):
    """``outputs(x, lengths)`` is ``forward(x, None, lengths)[0]``: the fused encoders take an
    unpacked route (each row reversed inside its length for the backward direction), which
    must give the same numbers and the same gradients, with padding that holds garbage."""
    if bidirectional and name in ("tcn", "transformer"):
        enc = make(name, bidirectional=True)
    else:
        enc = make(name, bidirectional=bidirectional)
    enc.eval()  # dropout masks differ between the routes; the arithmetic must not
    lengths = torch.tensor(LENGTHS)
    x = x64().requires_grad_(True)
    with torch.no_grad():  # padding that would poison a route that reads it
        x[1, 3:] = float("nan")
    y_ref = enc(x, None, lengths)[0]
    y = enc.outputs(x, lengths)
    assert y.shape == y_ref.shape
    assert torch.equal(y[1, 3:], torch.zeros_like(y[1, 3:]))
    assert (y - y_ref).abs().max().item() < TOL
    params = [p for p in enc.parameters() if p.requires_grad]
    g_ref = torch.autograd.grad((y_ref ** 2).sum(), [x] + params)
    g = torch.autograd.grad((y ** 2).sum(), [x] + params)
    assert not torch.isnan(g[0]).any() and not any(torch.isnan(p).any() for p in g[1:])
    assert max((a - b).abs().max().item() for a, b in zip(g, g_ref)) < TOL
    assert torch.equal(enc.outputs(x[:1, :]), enc(x[:1, :])[0])  # no lengths: forward itself


def test_fused_outputs_skip_packing_and_keep_dropout_in_training():
    enc = make("lstm", num_layers=2, bidirectional=True, dropout=0.5)
    x, lengths = x64(), torch.tensor(LENGTHS)
    enc.train()
    torch.manual_seed(0)
    a = enc.outputs(x, lengths)
    torch.manual_seed(1)
    b = enc.outputs(x, lengths)
    assert not torch.equal(a, b)  # dropout between layers is drawn
    enc.eval()
    assert torch.equal(enc.outputs(x, lengths), enc.outputs(x, lengths))
