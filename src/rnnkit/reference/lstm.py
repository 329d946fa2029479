"""Long short-term memory (Hochreiter & Schmidhuber 1997; forget gate: Gers et al. 2000).

PyTorch's ``nn.LSTM``, gate order i, f, g, o along the rows of W_ih, W_hh (each (4H, ·)):

    [a_i, a_f, a_g, a_o] = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh      (B, 4H)
    i = σ(a_i)    f = σ(a_f)    g = tanh(a_g)    o = σ(a_o)
    c_t = f ⊙ c_{t-1} + i ⊙ g
    h_t = o ⊙ tanh(c_t)

Backpropagation through one step, given dL/dh_t and dL/dc_t from step t+1:

    do   = dh_t ⊙ tanh(c_t)
    dc   = dc_t + dh_t ⊙ o ⊙ (1 - tanh²(c_t))          total gradient reaching c_t
    di   = dc ⊙ g     df = dc ⊙ c_{t-1}     dg = dc ⊙ i     dc_{t-1} = dc ⊙ f
    da_i = di ⊙ i(1-i)   da_f = df ⊙ f(1-f)   da_g = dg ⊙ (1-g²)   da_o = do ⊙ o(1-o)
    da   = [da_i, da_f, da_g, da_o]                                (B, 4H)
    dx_t = da W_ih      dh_{t-1} = da W_hh
    dW_ih += daᵀ x_t    dW_hh += daᵀ h_{t-1}    db_ih += Σ_b da    db_hh += Σ_b da

The cell path dc_{t-1} = dc ⊙ f multiplies by the forget gate only, with no weight matrix:
that is why an LSTM carries gradients across long spans.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .base import Array, CellSpec, Params, sigmoid


def lstm_step_forward(x: Array, h_prev: Array, c_prev: Array, w_ih: Array, w_hh: Array,
                      b_ih: Array, b_hh: Array) -> Tuple[Array, Array, tuple]:
    """One LSTM step. x (B, C), h_prev/c_prev (B, H), w_ih (4H, C), w_hh (4H, H) -> h, c, cache."""
    H = h_prev.shape[1]
    a = x @ w_ih.T + b_ih + h_prev @ w_hh.T + b_hh  # (B, 4H)
    i = sigmoid(a[:, 0 * H:1 * H])  # (B, H)
    f = sigmoid(a[:, 1 * H:2 * H])
    g = np.tanh(a[:, 2 * H:3 * H])
    o = sigmoid(a[:, 3 * H:4 * H])
    c = f * c_prev + i * g  # (B, H)
    tc = np.tanh(c)
    h = o * tc  # (B, H)
    cache = (x, h_prev, c_prev, w_ih, w_hh, i, f, g, o, tc)
    return h, c, cache


def lstm_step_backward(dh: Array, dc: Optional[Array], cache: tuple
                       ) -> Tuple[Array, Array, Array, Params]:
    """dL/dh, dL/dc (B, H; dc may be None) and the cache -> (dx, dh_prev, dc_prev, grads)."""
    x, h_prev, c_prev, w_ih, w_hh, i, f, g, o, tc = cache
    do = dh * tc  # (B, H)
    dc = dh * o * (1 - tc * tc) + (0 if dc is None else dc)  # (B, H)
    di = dc * g
    df = dc * c_prev
    dg = dc * i
    dc_prev = dc * f
    da = np.concatenate([  # (B, 4H)
        di * i * (1 - i),
        df * f * (1 - f),
        dg * (1 - g * g),
        do * o * (1 - o),
    ], axis=1)
    dx = da @ w_ih  # (B, C)
    dh_prev = da @ w_hh  # (B, H)
    db = da.sum(axis=0)  # (4H,)
    grads = {
        "weight_ih": da.T @ x,  # (4H, C)
        "weight_hh": da.T @ h_prev,  # (4H, H)
        "bias_ih": db,
        "bias_hh": db.copy(),
    }
    return dx, dh_prev, dc_prev, grads


def _forward(x, state, w_ih, w_hh, b_ih, b_hh):
    h, c, cache = lstm_step_forward(x, state[0], state[1], w_ih, w_hh, b_ih, b_hh)
    return (h, c), cache


def _backward(dstate, cache):
    dx, dh_prev, dc_prev, grads = lstm_step_backward(dstate[0], dstate[1], cache)
    return dx, (dh_prev, dc_prev), grads


LSTM = CellSpec(name="lstm", gates=4, n_state=2, forward=_forward, backward=_backward)
