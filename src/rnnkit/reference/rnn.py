"""Elman recurrent network (Elman 1990), PyTorch's ``nn.RNN`` with tanh or relu.

    a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh        (B, H)
    h_t = φ(a_t)                                       φ = tanh or relu

Backpropagation through one step, given dL/dh_t (from the output at t and from step t+1):

    da      = dh_t ⊙ φ'(a_t)          tanh' = 1 - h_t²;  relu' = [a_t > 0] (0 at a_t = 0, as torch)
    dx_t    = da W_ih                 dh_{t-1} = da W_hh
    dW_ih  += daᵀ x_t                 dW_hh   += daᵀ h_{t-1}
    db_ih  += Σ_b da                  db_hh   += Σ_b da

Repeating the last line for t = T..1 is backpropagation through time: the factor W_hh φ'
multiplies the gradient once per step, which is why it vanishes or explodes over long spans.

:class:`SimpleRNN` is the tutorial's first example: one unbatched sequence, classic
``h_t = tanh(W_hh h_{t-1} + W_xh x_t + b)``, every hidden state from h_0 kept.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .base import Array, CellSpec, Params, param_names


def rnn_step_forward(x: Array, h_prev: Array, w_ih: Array, w_hh: Array, b_ih: Array, b_hh: Array,
                     nonlinearity: str = "tanh") -> Tuple[Array, tuple]:
    """One Elman step. x (B, C), h_prev (B, H), w_ih (H, C), w_hh (H, H) -> h (B, H), cache."""
    a = x @ w_ih.T + b_ih + h_prev @ w_hh.T + b_hh  # (B, H)
    if nonlinearity == "tanh":
        h = np.tanh(a)
    elif nonlinearity == "relu":
        h = np.maximum(a, 0)
    else:
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    cache = (x, h_prev, w_ih, w_hh, a, h, nonlinearity)
    return h, cache


def rnn_step_backward(dh: Array, cache: tuple) -> Tuple[Array, Array, Params]:
    """dL/dh (B, H) and the step's cache -> (dx (B, C), dh_prev (B, H), grads of the 4 weights)."""
    x, h_prev, w_ih, w_hh, a, h, nonlinearity = cache
    if nonlinearity == "tanh":
        da = dh * (1 - h * h)  # (B, H)
    else:
        da = np.where(a > 0, dh, 0)  # (B, H)
    dx = da @ w_ih  # (B, C)
    dh_prev = da @ w_hh  # (B, H)
    grads = {
        "weight_ih": da.T @ x,  # (H, C)
        "weight_hh": da.T @ h_prev,  # (H, H)
        "bias_ih": da.sum(axis=0),  # (H,)
        "bias_hh": da.sum(axis=0),  # (H,)
    }
    return dx, dh_prev, grads


def _spec(nonlinearity: str) -> CellSpec:
    def forward(x, state, w_ih, w_hh, b_ih, b_hh):
        h, cache = rnn_step_forward(x, state[0], w_ih, w_hh, b_ih, b_hh, nonlinearity)
        return (h,), cache

    def backward(dstate, cache):
        dx, dh_prev, grads = rnn_step_backward(dstate[0], cache)
        return dx, (dh_prev,), grads

    name = "rnn" if nonlinearity == "tanh" else "rnn-relu"  # rnnkit's encoder names
    return CellSpec(name=name, gates=1, n_state=1, forward=forward, backward=backward)


RNN_TANH = _spec("tanh")
RNN_RELU = _spec("relu")


class SimpleRNN:
    """The tutorial's Elman RNN on one unbatched sequence: h_t = tanh(W_hh h_{t-1} + W_xh x_t + b).

    Weights are drawn as ``rng.standard_normal(shape) * scale`` (W_xh first, then W_hh), biases
    are zero. They are stored under PyTorch's names in ``self.params`` (``weight_ih_l0`` is
    W_xh, ``weight_hh_l0`` is W_hh, and b = ``bias_ih_l0 + bias_hh_l0``), so the same weights
    load into ``torch.nn.RNN(input_size, hidden_size)``.
    """

    def __init__(self, input_size: int, hidden_size: int, rng: Optional[np.random.Generator] = None,
                 scale: float = 0.01, nonlinearity: str = "tanh") -> None:
        rng = np.random.default_rng() if rng is None else rng
        w_ih, w_hh, b_ih, b_hh = param_names(0)
        self.input_size, self.hidden_size, self.nonlinearity = input_size, hidden_size, nonlinearity
        self.params: Params = {
            w_ih: rng.standard_normal((hidden_size, input_size)) * scale,  # W_xh (H, C)
            w_hh: rng.standard_normal((hidden_size, hidden_size)) * scale,  # W_hh (H, H)
            b_ih: np.zeros(hidden_size),
            b_hh: np.zeros(hidden_size),
        }
        self._caches: list = []

    def forward(self, xs: Array, h0: Optional[Array] = None) -> Array:
        """xs (T, C) -> hs (T + 1, H): every hidden state, hs[0] = h0 (zeros by default)."""
        xs = np.asarray(xs, dtype=self.params["weight_ih_l0"].dtype)
        h = np.zeros((1, self.hidden_size), xs.dtype) if h0 is None else np.asarray(h0).reshape(1, -1)
        hs, self._caches = [h[0]], []
        weights = [self.params[n] for n in param_names(0)]
        for x_t in xs:
            h, cache = rnn_step_forward(x_t[None, :], h, *weights, self.nonlinearity)  # (1, H)
            hs.append(h[0])
            self._caches.append(cache)
        return np.stack(hs)  # (T + 1, H)

    def backward(self, dhs: Array) -> Tuple[Array, Array, Params]:
        """dL/dhs (T + 1, H) for the states the last forward returned -> (dxs, dh0, grads)."""
        dh = dhs[-1][None, :]  # (1, H)
        grads = {n: np.zeros_like(p) for n, p in self.params.items()}
        dxs = []
        for t in range(len(self._caches) - 1, -1, -1):
            dx, dh_prev, g = rnn_step_backward(dh, self._caches[t])
            for key, name in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), param_names(0)):
                grads[name] += g[key]
            dxs.append(dx[0])
            dh = dh_prev + dhs[t][None, :]
        return np.stack(dxs[::-1]), dh[0], grads
