"""Centred finite differences, to check hand-written backward passes (use float64).

    ∂L/∂θ_i ≈ (L(θ + ε e_i) - L(θ - ε e_i)) / 2ε          error O(ε²) + rounding O(u/ε)

and the error measure used throughout rnnkit's tests, per tensor:

    relative_error(a, b) = max|a - b| / max|b|
"""

from __future__ import annotations

from typing import Callable, Dict, Mapping

import numpy as np

from .base import Array


def relative_error(a: Array, b: Array) -> float:
    """max|a - b| / max|b| (0 when both are zero; inf when only b is)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    if scale == 0.0:
        return 0.0 if diff == 0.0 else float("inf")
    return diff / scale


def numerical_gradient(loss: Callable[[], float], array: Array, eps: float = 1e-6) -> Array:
    """dL/d(array) by centred differences; ``loss()`` must read ``array``, which is perturbed
    in place element by element and restored."""
    grad = np.zeros(array.shape, np.float64)
    flat = array.reshape(-1)  # a view: writing it perturbs ``array``
    if not np.shares_memory(flat, array):
        raise ValueError("array must be contiguous so that it can be perturbed in place")
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = loss()
        flat[i] = old - eps
        minus = loss()
        flat[i] = old
        grad.reshape(-1)[i] = (plus - minus) / (2 * eps)
    return grad


def check_gradients(loss: Callable[[], float], arrays: Mapping[str, Array],
                    analytic: Mapping[str, Array], eps: float = 1e-6) -> Dict[str, float]:
    """relative_error(analytic, numerical) for every named array."""
    return {name: relative_error(analytic[name], numerical_gradient(loss, arr, eps))
            for name, arr in arrays.items()}
