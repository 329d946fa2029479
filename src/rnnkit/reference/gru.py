"""Gated recurrent unit (Cho et al. 2014), PyTorch's ``nn.GRU``, gate order r, z, n.

The reset gate multiplies the *projected* hidden state W_hn h + b_hn (as in cuDNN and
PyTorch), not h itself:

    [gi_r, gi_z, gi_n] = W_ih x_t + b_ih          (B, 3H)
    [gh_r, gh_z, gh_n] = W_hh h_{t-1} + b_hh      (B, 3H)
    r = σ(gi_r + gh_r)          reset gate
    z = σ(gi_z + gh_z)          update gate
    n = tanh(gi_n + r ⊙ gh_n)   candidate
    h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}

Backpropagation through one step, given dL/dh_t:

    dn = dh_t ⊙ (1 - z)        dz = dh_t ⊙ (h_{t-1} - n)
    da_n = dn ⊙ (1 - n²)       dr = da_n ⊙ gh_n
    da_r = dr ⊙ r(1-r)         da_z = dz ⊙ z(1-z)
    dgi = [da_r, da_z, da_n]                 dgh = [da_r, da_z, da_n ⊙ r]      (B, 3H)
    dx_t = dgi W_ih            dh_{t-1} = dh_t ⊙ z + dgh W_hh
    dW_ih += dgiᵀ x_t          dW_hh += dghᵀ h_{t-1}    db_ih += Σ_b dgi    db_hh += Σ_b dgh
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from .base import Array, CellSpec, Params, sigmoid


def gru_step_forward(x: Array, h_prev: Array, w_ih: Array, w_hh: Array, b_ih: Array, b_hh: Array
                     ) -> Tuple[Array, tuple]:
    """One GRU step. x (B, C), h_prev (B, H), w_ih (3H, C), w_hh (3H, H) -> h (B, H), cache."""
    H = h_prev.shape[1]
    gi = x @ w_ih.T + b_ih  # (B, 3H)
    gh = h_prev @ w_hh.T + b_hh  # (B, 3H)
    r = sigmoid(gi[:, 0 * H:1 * H] + gh[:, 0 * H:1 * H])  # (B, H)
    z = sigmoid(gi[:, 1 * H:2 * H] + gh[:, 1 * H:2 * H])
    gh_n = gh[:, 2 * H:3 * H]
    n = np.tanh(gi[:, 2 * H:3 * H] + r * gh_n)
    h = (1 - z) * n + z * h_prev  # (B, H)
    cache = (x, h_prev, w_ih, w_hh, r, z, n, gh_n)
    return h, cache


def gru_step_backward(dh: Array, cache: tuple) -> Tuple[Array, Array, Params]:
    """dL/dh (B, H) and the step's cache -> (dx (B, C), dh_prev (B, H), grads of the 4 weights)."""
    x, h_prev, w_ih, w_hh, r, z, n, gh_n = cache
    dn = dh * (1 - z)  # (B, H)
    dz = dh * (h_prev - n)
    da_n = dn * (1 - n * n)
    dr = da_n * gh_n
    da_r = dr * r * (1 - r)
    da_z = dz * z * (1 - z)
    dgi = np.concatenate([da_r, da_z, da_n], axis=1)  # (B, 3H)
    dgh = np.concatenate([da_r, da_z, da_n * r], axis=1)  # (B, 3H)
    dx = dgi @ w_ih  # (B, C)
    dh_prev = dh * z + dgh @ w_hh  # (B, H)
    grads = {
        "weight_ih": dgi.T @ x,  # (3H, C)
        "weight_hh": dgh.T @ h_prev,  # (3H, H)
        "bias_ih": dgi.sum(axis=0),  # (3H,)
        "bias_hh": dgh.sum(axis=0),  # (3H,)
    }
    return dx, dh_prev, grads


def _forward(x, state, w_ih, w_hh, b_ih, b_hh):
    h, cache = gru_step_forward(x, state[0], w_ih, w_hh, b_ih, b_hh)
    return (h,), cache


def _backward(dstate, cache):
    dx, dh_prev, grads = gru_step_backward(dstate[0], cache)
    return dx, (dh_prev,), grads


GRU = CellSpec(name="gru", gates=3, n_state=1, forward=_forward, backward=_backward)
