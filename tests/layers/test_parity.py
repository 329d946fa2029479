"""Parity of the encoders' two routes to one answer, in float64.

* hand-written cells == fused torch kernels: outputs, final states and the gradients of a random
  scalar loss w.r.t. every parameter, the input and the initial state (max abs diff <= 1e-10);
* padded batch with ``lengths`` == every row run alone, unpadded, through stock ``torch.nn``;
  padded positions of ``y`` are exactly zero and the padding values never matter.
"""

from __future__ import annotations

import pytest
import torch

from .helpers import (B, C, CELLS, LENGTHS, T, TOL, assert_parity, make_pair, plain_torch,
                      random_state, run_with_grads, state_parts)


@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "given-state"])
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "ragged"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2], ids=["L1", "L2"])
@pytest.mark.parametrize("cell", CELLS)
def test_hand_equals_fused(cell, num_layers, bidirectional, with_lengths, with_state):
    torch.manual_seed(0)
    fused, hand = make_pair(cell, num_layers, bidirectional)
    x = torch.randn(B, T, C, dtype=torch.float64)
    state = random_state(cell, num_layers, bidirectional) if with_state else None
    lengths = torch.tensor(LENGTHS) if with_lengths else None

    ref = run_with_grads(fused, x, state, lengths)
    got = run_with_grads(hand, x, state, lengths)
    assert_parity(ref, got)

    # the comparison is not vacuous: every gradient entry exists and some are non-zero
    assert all(g.abs().max() > 0 for k, g in ref.items() if k.startswith("grad "))
    if with_lengths:
        for b, n in enumerate(LENGTHS):
            assert torch.equal(got["y"][b, n:], torch.zeros_like(got["y"][b, n:]))
            assert torch.equal(got["grad x"][b, n:], torch.zeros_like(got["grad x"][b, n:]))


def test_hand_equals_fused_in_eval_mode_without_grad():
    """No autograd graph (inference) takes the same path to the same numbers."""
    torch.manual_seed(1)
    fused, hand = make_pair("lstm", num_layers=2, bidirectional=True)
    fused.eval(), hand.eval()
    x = torch.randn(B, T, C, dtype=torch.float64)
    with torch.no_grad():
        y_f, (h_f, c_f) = fused(x, lengths=torch.tensor(LENGTHS))
        y_h, (h_h, c_h) = hand(x, lengths=torch.tensor(LENGTHS))
    for a, b in [(y_f, y_h), (h_f, h_h), (c_f, c_h)]:
        assert (a - b).abs().max() <= TOL


@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "given-state"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2], ids=["L1", "L2"])
@pytest.mark.parametrize("cell", CELLS)
def test_padded_batch_equals_unpadded_rows(cell, num_layers, bidirectional, with_state):
    """Fused encoder with lengths == stock torch.nn on each row alone, cut to its length."""
    torch.manual_seed(2)
    fused, hand = make_pair(cell, num_layers, bidirectional)
    plain = plain_torch(cell, num_layers, bidirectional)
    plain.load_state_dict(fused.state_dict())
    x = torch.randn(B, T, C, dtype=torch.float64)
    state = random_state(cell, num_layers, bidirectional) if with_state else None
    lengths = torch.tensor(LENGTHS)

    with torch.no_grad():
        y, final = fused(x, state, lengths=lengths)
        final = state_parts(final)
        for b, n in enumerate(LENGTHS):
            row_state = None
            if state is not None:
                parts = tuple(p[:, b:b + 1] for p in state_parts(state))
                row_state = parts[0] if len(parts) == 1 else parts
            y_row, final_row = plain(x[b:b + 1, :n], row_state)  # unpadded: (1, n, D*H)
            assert (y[b, :n] - y_row[0]).abs().max() <= TOL
            assert torch.equal(y[b, n:], torch.zeros_like(y[b, n:])), "padding of y must be 0"
            for f, f_row in zip(final, state_parts(final_row)):
                assert (f[:, b] - f_row[:, 0]).abs().max() <= TOL


@pytest.mark.parametrize("impl", ["fused", "hand"])
@pytest.mark.parametrize("cell", CELLS)
def test_padding_values_never_matter(cell, impl):
    """Rewriting the padded positions of x changes neither y nor the state (bit for bit)."""
    torch.manual_seed(3)
    fused, hand = make_pair(cell, num_layers=2, bidirectional=True)
    enc = fused if impl == "fused" else hand
    x = torch.randn(B, T, C, dtype=torch.float64)
    x_other = x.clone()
    for b, n in enumerate(LENGTHS):
        x_other[b, n:] = 1e3 * torch.randn(T - n, C, dtype=torch.float64)
    assert not torch.equal(x, x_other)
    state = random_state(cell, 2, True)
    lengths = torch.tensor(LENGTHS)
    with torch.no_grad():
        y1, s1 = enc(x, state, lengths=lengths)
        y2, s2 = enc(x_other, state, lengths=lengths)
    assert torch.equal(y1, y2)
    for a, b in zip(state_parts(s1), state_parts(s2)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("impl", ["fused", "hand"])
def test_lengths_equal_to_T_is_the_unmasked_run(impl):
    """lengths == T everywhere is the same computation as no lengths at all."""
    torch.manual_seed(4)
    fused, hand = make_pair("gru", num_layers=2, bidirectional=True)
    enc = fused if impl == "fused" else hand
    x = torch.randn(B, T, C, dtype=torch.float64)
    with torch.no_grad():
        y1, h1 = enc(x)
        y2, h2 = enc(x, lengths=torch.full((B,), T))
    assert (y1 - y2).abs().max() <= TOL and (h1 - h2).abs().max() <= TOL


@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["nan", "inf"])
@pytest.mark.parametrize("cell", CELLS)
def test_non_finite_padding_never_reaches_outputs_or_gradients(cell, bad):
    """nan/inf in the padding: same y, state and gradients as zero padding, fused and hand."""
    torch.manual_seed(5)
    fused, hand = make_pair(cell, num_layers=2, bidirectional=True)
    x = torch.randn(B, T, C, dtype=torch.float64)
    x_bad = x.clone()
    for b, n in enumerate(LENGTHS):
        x_bad[b, n:] = bad
    lengths = torch.tensor(LENGTHS)
    ref = run_with_grads(fused, x, None, lengths)
    for enc in (fused, hand):
        got = run_with_grads(enc, x_bad, None, lengths)
        assert all(bool(v.isfinite().all()) for v in got.values())
        assert_parity(ref, got)
