"""Embedding, linear layer and softmax cross-entropy as forward/backward pairs (PyTorch layouts).

    embedding:      y = W[ids]                         W (V, E)      dW[v] = Σ_{ids = v} dy
    linear:         y = x Wᵀ + b                       W (O, I)      dx = dy W, dW = dyᵀ x, db = Σ dy
    cross-entropy:  L = -1/N Σ_n log softmax(z_n)[y_n]               dz_n = (softmax(z_n) - onehot(y_n)) / N

N counts the targets that are not ``ignore_index`` (PyTorch's ``reduction='mean'``).
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .base import Array


def embedding_forward(ids: Array, weight: Array) -> Tuple[Array, tuple]:
    """ids (...) int -> vectors (..., E) from weight (V, E)."""
    ids = np.asarray(ids)
    return weight[ids], (ids, weight.shape, weight.dtype)


def embedding_backward(dy: Array, cache: tuple) -> Array:
    """dL/dy (..., E) -> dL/dweight (V, E); repeated ids accumulate."""
    ids, shape, dtype = cache
    dweight = np.zeros(shape, dtype)
    np.add.at(dweight, ids.reshape(-1), dy.reshape(-1, shape[1]))
    return dweight


def linear_forward(x: Array, weight: Array, bias: Optional[Array] = None) -> Tuple[Array, tuple]:
    """x (..., I), weight (O, I), bias (O,) -> y (..., O)."""
    y = x @ weight.T  # (..., O)
    if bias is not None:
        y = y + bias
    return y, (x, weight, bias is not None)


def linear_backward(dy: Array, cache: tuple) -> Tuple[Array, Array, Optional[Array]]:
    """dL/dy (..., O) -> (dx (..., I), dweight (O, I), dbias (O,) or None)."""
    x, weight, has_bias = cache
    dx = dy @ weight  # (..., I)
    dy2 = dy.reshape(-1, dy.shape[-1])  # (N, O)
    dweight = dy2.T @ x.reshape(-1, x.shape[-1])  # (O, I)
    dbias = dy2.sum(axis=0) if has_bias else None
    return dx, dweight, dbias


def log_softmax(z: Array, axis: int = -1) -> Array:
    """log softmax, shifted by the max for stability."""
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def cross_entropy_forward(logits: Array, targets: Array, ignore_index: Optional[int] = None
                          ) -> Tuple[float, tuple]:
    """Mean softmax cross-entropy. logits (..., V), targets (...) int -> loss (nats), cache."""
    V = logits.shape[-1]
    z = logits.reshape(-1, V)  # (N, V)
    y = np.asarray(targets).reshape(-1)  # (N,)
    keep = np.ones(y.shape, bool) if ignore_index is None else y != ignore_index
    n = int(keep.sum())
    logp = log_softmax(z)  # (N, V)
    picked = logp[np.arange(len(y)), np.where(keep, y, 0)]  # (N,)
    loss = -(picked * keep).sum() / max(n, 1)
    return float(loss), (logp, y, keep, max(n, 1), logits.shape)


def cross_entropy_backward(dloss: float, cache: tuple) -> Array:
    """dL/dloss (a scalar, 1.0 for the loss itself) -> dL/dlogits (..., V)."""
    logp, y, keep, n, shape = cache
    dz = np.exp(logp)  # softmax (N, V)
    dz[np.arange(len(y)), np.where(keep, y, 0)] -= 1
    dz *= (keep[:, None] * (dloss / n)).astype(dz.dtype)
    return dz.reshape(shape)
