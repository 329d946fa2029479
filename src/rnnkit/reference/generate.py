"""Streaming generation loop shared by every engine (NumPy only).

A *stepper* is anything with ``step(token, state) -> (logits (V,), state)``: the NumPy
runtime or a torch encoder's ``step()``. The state is carried from token to token, so the
prefix is fed once and never recomputed.
"""

from __future__ import annotations

from typing import Iterator, Optional, Sequence

import numpy as np

from .sampling import SamplingParams, next_token


def generate(stepper, vocab_chars: Sequence[str], prime: str, length: int, params: SamplingParams,
             seed: Optional[int] = None) -> Iterator[str]:
    """Yield ``length`` characters after ``prime`` (which must be non-empty and in-vocabulary)."""
    index = {c: i for i, c in enumerate(vocab_chars)}
    unknown = sorted({c for c in prime if c not in index})
    if unknown:
        raise KeyError("".join(unknown))
    if not prime:
        raise ValueError("prime must hold at least one character")
    rng = np.random.default_rng(seed)
    state = None
    logits = None
    for c in prime:
        logits, state = stepper.step(index[c], state)
    for _ in range(length):
        tok = next_token(logits, rng, params)
        yield vocab_chars[tok]
        logits, state = stepper.step(tok, state)
