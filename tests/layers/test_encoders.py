"""minGRU, minLSTM, TCN and Transformer under the encoder contract (float64, tol 1e-10).

Equivalences: step() with its state (hidden state, input buffers, key/value cache) == the
full forward; two chunks with the carried state == one sequence; a padded batch == each row
alone; every minGRU/minLSTM scan route == the step loop, values and gradients. Plus
causality, receptive field, bidirectional behaviour, shapes, state checks and dropout.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from rnnkit.layers import ENCODERS, build_encoder, detach_state, map_state
from rnnkit.layers.mingru import METHODS, MinGRU, MinLSTM, g_act, log_g
from rnnkit.layers.tcn import TCN
from rnnkit.layers.transformer import Transformer, default_heads

NEW = ["mingru", "minlstm", "tcn", "transformer"]
MIN = ["mingru", "minlstm"]
B, T, C, H = 3, 9, 4, 8
LENGTHS = [9, 1, 5]
TOL = 1e-10


def make(name, num_layers=2, bidirectional=False, dropout=0.0, **kw):
    torch.manual_seed(0)
    if kw:
        cls = {"mingru": MinGRU, "minlstm": MinLSTM, "tcn": TCN, "transformer": Transformer}[name]
        enc = cls(C, H, num_layers=num_layers, bidirectional=bidirectional, dropout=dropout, **kw)
    else:
        enc = build_encoder(name, C, H, num_layers=num_layers, dropout=dropout, bidirectional=bidirectional)
    return enc.double().eval()


def x64(batch=B, steps=T, seed=1) -> Tensor:
    return torch.randn(batch, steps, C, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def parts(state):
    if state is None:
        return []
    return [state] if isinstance(state, Tensor) else [p for s in state for p in parts(s)]


def diff(a, b) -> float:
    pa, pb = parts(a), parts(b)
    assert len(pa) == len(pb)
    return max(((p.double() - q.double()).abs().max().item() for p, q in zip(pa, pb)), default=0.0)


# -- registry and attributes -----------------------------------------------------------------
def test_registered_with_the_documented_flags():
    from rnnkit.training.config import ENCODER_NAMES

    for name in NEW:
        assert name in ENCODERS and name in ENCODER_NAMES
    assert make("mingru").carries_state and make("minlstm").carries_state
    assert not make("tcn").carries_state and not make("transformer").carries_state


@pytest.mark.parametrize("bidirectional", [False, True], ids=["causal", "bi"])
@pytest.mark.parametrize("name", NEW)
def test_shapes_and_output_size(name, bidirectional):
    enc = make(name, bidirectional=bidirectional)
    D = 2 if (bidirectional and name in MIN) else 1
    assert enc.input_size == C and enc.output_size == H * D
    for lengths in (None, torch.tensor(LENGTHS)):
        y, state = enc(x64(), lengths=lengths)
        assert y.shape == (B, T, enc.output_size)
    if name in MIN:
        assert state.shape == (2 * D, B, H)  # (L*D, B, H), like nn.GRU


# -- step() == forward -----------------------------------------------------------------------
@pytest.mark.parametrize("with_state", [False, True], ids=["fresh", "continued"])
@pytest.mark.parametrize("name", NEW)
def test_step_loop_equals_forward(name, with_state):
    enc = make(name)
    x = x64()
    with torch.no_grad():
        s0 = enc(x64(seed=7)[:, :4])[1] if with_state else None  # a state from a previous chunk
        y, s = enc(x, s0)
        state, ys = s0, []
        for t in range(T):
            y_t, state = enc.step(x[:, t], state)
            assert y_t.shape == (B, enc.output_size)
            ys.append(y_t)
    assert diff(torch.stack(ys, 1), y) <= TOL
    assert diff(state, s) <= TOL


@pytest.mark.parametrize("split", [1, 4])
@pytest.mark.parametrize("name", NEW)
def test_two_chunks_with_carried_state_equal_one_sequence(name, split):
    enc = make(name)
    x = x64()
    with torch.no_grad():
        y, s = enc(x)
        y1, s1 = enc(x[:, :split])
        y2, s2 = enc(x[:, split:], s1)
    assert diff(torch.cat([y1, y2], 1), y) <= TOL
    assert diff(s2, s) <= TOL


@pytest.mark.parametrize("name", NEW)
def test_state_size_is_constant_for_rnns_and_grows_for_the_transformer(name):
    enc = make(name)
    sizes = []
    with torch.no_grad():
        state = None
        for t in range(T):
            _, state = enc.step(x64()[:, t], state)
            sizes.append(sum(p.numel() for p in parts(state)))
    if name == "transformer":
        assert sizes == [sizes[0] * (t + 1) for t in range(T)]  # one key/value column per step
    else:
        assert len(set(sizes)) == 1


# -- padding never leaks ---------------------------------------------------------------------
@pytest.mark.parametrize("bidirectional", [False, True], ids=["causal", "bi"])
@pytest.mark.parametrize("name", NEW)
def test_padded_batch_equals_unpadded_rows(name, bidirectional):
    enc = make(name, bidirectional=bidirectional)
    x = x64()
    x_pad = x.clone()
    for b, n in enumerate(LENGTHS):
        x_pad[b, n:] = 1e3  # garbage in the padding must not matter
    with torch.no_grad():
        y, s = enc(x_pad, lengths=torch.tensor(LENGTHS))
        for b, n in enumerate(LENGTHS):
            yb, sb = enc(x[b:b + 1, :n])
            assert diff(y[b:b + 1, :n], yb) <= TOL
            assert y[b, n:].abs().max().item() == 0.0 if n < T else True
            if name in MIN:
                assert diff(s[:, b:b + 1], sb) <= TOL
    if not bidirectional and name not in MIN:
        # the returned state continues each row exactly as if it had never been padded
        x2 = x64(steps=3, seed=3)
        with torch.no_grad():
            y2, _ = enc(x2, s)
            for b, n in enumerate(LENGTHS):
                ref, _ = enc(torch.cat([x[b:b + 1, :n], x2[b:b + 1]], 1))
                assert diff(y2[b:b + 1], ref[:, n:]) <= TOL


# -- minGRU / minLSTM: every scan route is the same model ------------------------------------
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("name", MIN)
def test_scan_routes_agree_values_and_gradients(name, bidirectional):
    enc = make(name, bidirectional=bidirectional)
    D = 2 if bidirectional else 1
    s0 = torch.rand(2 * D, B, H, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    results = {}
    for method in METHODS:
        enc.method = method
        enc.zero_grad(set_to_none=True)
        x, s = x64().requires_grad_(True), s0.clone().requires_grad_(True)
        y, h = enc(x, s, torch.tensor(LENGTHS))
        w = torch.randn(y.shape, dtype=y.dtype, generator=torch.Generator().manual_seed(4))
        ((y * w).sum() + (h * h).sum()).backward()
        results[method] = [y, h, x.grad, s.grad] + [p.grad for p in enc.parameters()]
    for method in METHODS:
        assert diff(results[method], results["loop"]) <= TOL, method


def test_min_equations_by_hand():
    """One minGRU / minLSTM layer, written out from the paper's equations."""
    x = x64()
    for name in MIN:
        enc = make(name, num_layers=1)
        W, b = enc.layers[0].cell.proj.weight, enc.layers[0].cell.proj.bias
        p = x @ W.T + b
        if name == "mingru":
            z, v = torch.sigmoid(p[..., :H]), p[..., H:]
        else:
            f, i, v = torch.sigmoid(p[..., :H]), torch.sigmoid(p[..., H:2 * H]), p[..., 2 * H:]
            z = i / (f + i)
        cand = torch.where(v >= 0, v + 0.5, torch.sigmoid(v))
        h, hs = torch.zeros(B, H, dtype=torch.float64), []
        for t in range(T):
            h = (1 - z[:, t]) * h + z[:, t] * cand[:, t]
            hs.append(h)
        with torch.no_grad():
            y, s = enc(x)
        assert diff(y, torch.stack(hs, 1)) <= TOL and diff(s[0], h) <= TOL


def test_g_activation_and_its_log():
    v = torch.linspace(-30, 30, 601, dtype=torch.float64, requires_grad=True)
    g = g_act(v)
    ref = torch.where(v >= 0, v + 0.5, torch.sigmoid(v))
    assert (g - ref).abs().max().item() <= 1e-15 and (g > 0).all()
    log_ref = torch.where(v >= 0, torch.log(v + 0.5), torch.nn.functional.logsigmoid(v))
    assert (log_g(v) - log_ref).abs().max().item() <= 1e-12
    (gv,) = torch.autograd.grad(g.sum(), v)
    (rv,) = torch.autograd.grad(ref.sum(), v)
    assert (gv - rv).abs().max().item() <= 1e-15


# -- causality, receptive field, bidirectional ----------------------------------------------
def _influence(enc, t_in: int) -> Tensor:
    """|dy_t / dx_{t_in}| summed, for every output position t: (T,)."""
    x = x64().requires_grad_(True)
    jac = torch.zeros(T, dtype=torch.float64)
    y, _ = enc(x)
    w = torch.randn(y.shape, dtype=y.dtype, generator=torch.Generator().manual_seed(6))
    for t in range(T):  # a random probe: sum(LayerNorm(u)) would have no gradient at all
        (g,) = torch.autograd.grad((y[:, t] * w[:, t]).sum(), x, retain_graph=True)
        jac[t] = g[:, t_in].abs().sum()
    return jac


@pytest.mark.parametrize("name", NEW)
def test_causal_encoders_never_read_the_future(name):
    jac = _influence(make(name), t_in=4)
    assert jac[:4].max().item() == 0.0 and jac[4:].min().item() > 0


@pytest.mark.parametrize("name", NEW)
def test_bidirectional_reads_both_sides_and_has_no_step(name):
    enc = make(name, bidirectional=True)
    jac = _influence(enc, t_in=4)
    assert jac[0].item() > 0 and jac[-1].item() > 0
    with pytest.raises(ValueError, match="causal"):
        enc.step(x64()[:, 0])
    if name not in MIN:
        with pytest.raises(ValueError, match="takes no state"):
            enc(x64(), make(name)(x64())[1])


def test_tcn_receptive_field_is_what_it_reports():
    enc = make("tcn", num_layers=2)  # K = 3: 1 + 2*2*(1 + 2) = 13 steps
    assert enc.receptive_field == 13
    x = torch.randn(1, 20, C, dtype=torch.float64, requires_grad=True)
    y, _ = enc(x)
    (g13,) = torch.autograd.grad(y[0, 12].sum(), x)
    assert g13[0, 0].abs().sum() > 0  # t - 12 is inside the field
    y, _ = enc(x)
    (g14,) = torch.autograd.grad(y[0, 13].sum(), x)
    assert g14[0, 0].abs().sum() == 0 and g14[0, 1].abs().sum() > 0
    assert make("tcn", num_layers=4, kernel_size=5).receptive_field == 1 + 2 * 4 * 15


def test_transformer_positions_and_heads():
    assert default_heads(8) == 1 and default_heads(256) == 4 and default_heads(192) == 3
    sin = make("transformer")
    learned = make("transformer", positions="learned", max_len=12)
    x = x64()
    # position matters: the same vector at two positions gives two outputs
    same = x[:, :1].expand(B, T, C)
    for enc in (sin, learned):
        with torch.no_grad():
            y, _ = enc(same)
        assert (y[:, 0] - y[:, 5]).abs().max() > 1e-6
    with torch.no_grad():  # the learned table ends at max_len
        _, s = learned(x)
        with pytest.raises(ValueError, match="max_len=12"):
            learned(x64(steps=4), s)
    with pytest.raises(ValueError, match="divisible"):
        Transformer(C, 10, num_heads=3)
    with pytest.raises(ValueError, match="sinusoidal or learned"):
        Transformer(C, H, positions="rotary")


# -- errors, state handling, dropout ---------------------------------------------------------
@pytest.mark.parametrize("name", NEW)
def test_bad_inputs_and_wrong_states_raise(name):
    enc = make(name)
    with pytest.raises(ValueError, match=r"\(B, T, C\)"):
        enc(x64()[0])
    with pytest.raises(ValueError, match="lengths must lie"):
        enc(x64(), lengths=torch.tensor([T, 0, 2]))
    with pytest.raises(ValueError, match="x_t of shape"):
        enc.step(x64())
    with pytest.raises(TypeError, match="state must be"):
        enc(x64(), torch.zeros(1, B, H + 1, dtype=torch.float64))


@pytest.mark.parametrize("name", NEW)
def test_state_helpers_work_on_every_state(name):
    enc = make(name)
    x = x64().requires_grad_(True)
    _, s = enc(x)
    d = detach_state(s)
    assert all(not p.requires_grad for p in parts(d)) and diff(d, s) == 0.0
    assert diff(map_state(lambda t: t * 1, s), s) == 0.0


@pytest.mark.parametrize("name", NEW)
def test_dropout_only_in_train_mode(name):
    enc = make(name, dropout=0.5)
    plain = make(name, dropout=0.0)
    plain.load_state_dict(enc.state_dict())
    x = x64()
    with torch.no_grad():
        y_eval, _ = enc(x)
        assert diff(y_eval, plain(x)[0]) <= TOL
        enc.train()
        torch.manual_seed(3)
        assert (enc(x)[0] - y_eval).abs().max() > 1e-3


@pytest.mark.parametrize("name", NEW)
def test_one_gradient_step_lowers_a_loss(name):
    """Every parameter gets a gradient and a small step down it lowers the loss."""
    enc = make(name)
    x = x64()
    target = torch.randn(B, T, enc.output_size, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    loss = ((enc(x)[0] - target) ** 2).mean()
    loss.backward()
    for pname, p in enc.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    with torch.no_grad():
        for p in enc.parameters():
            p -= 1e-2 * p.grad
        assert ((enc(x)[0] - target) ** 2).mean() < loss
