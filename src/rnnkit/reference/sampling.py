"""Choosing the next token from logits: greedy, temperature, top-k and nucleus (top-p).

NumPy only, and the one sampler every engine uses, so the same seed gives the same text
wherever two engines' probabilities agree. Greedy decoding (temperature 0) takes the
arg-max, breaking ties toward the lower index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class SamplingParams:
    """How to pick the next token."""

    temperature: float = 1.0
    """Divides the logits; 0 means greedy (arg-max), must be >= 0."""
    top_k: Optional[int] = None
    """Keep only the k most likely tokens (>= 1); None keeps all."""
    top_p: Optional[float] = None
    """Keep the smallest set of tokens whose probability reaches p, in (0, 1]; None keeps all."""

    def __post_init__(self) -> None:
        if not (self.temperature >= 0 and np.isfinite(self.temperature)):
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if self.top_p is not None and not (0 < self.top_p <= 1):
            raise ValueError(f"top_p must lie in (0, 1], got {self.top_p}")


def next_token(logits: np.ndarray, rng: np.random.Generator, params: SamplingParams) -> int:
    """Draw one token id from 1-D ``logits`` (V,) with ``params``, using one uniform draw."""
    logits = np.asarray(logits, dtype=np.float64)
    if params.temperature == 0:
        return int(np.argmax(logits))  # first maximum: ties go to the lower index
    with np.errstate(over="ignore", invalid="ignore"):
        z = logits / params.temperature
    V = z.shape[0]
    if params.top_k is not None and params.top_k < V:
        kth = np.partition(z, V - params.top_k)[V - params.top_k]
        z = np.where(z >= kth, z, -np.inf)
    with np.errstate(over="ignore", invalid="ignore"):
        p = np.exp(z - z.max())
        total = p.sum()
    if not (np.isfinite(total) and total > 0):  # a temperature so small that it overflows: greedy
        return int(np.argmax(logits))
    p /= total
    if params.top_p is not None and params.top_p < 1:
        order = np.argsort(-p, kind="stable")
        cum = np.cumsum(p[order])
        keep = order[: int(np.searchsorted(cum, params.top_p, side="left")) + 1]
        mask = np.zeros(V, dtype=bool)
        mask[keep] = True
        p = np.where(mask, p, 0.0)
        p /= p.sum()
    cdf = np.cumsum(p)
    u = rng.random() * cdf[-1]
    return int(min(np.searchsorted(cdf, u, side="right"), V - 1))
