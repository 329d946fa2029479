"""Contiguous token streams for truncated backpropagation through time (char-rnn style).

The id array is cut into ``n_streams`` equal contiguous streams; batch ``i`` holds window
``i`` of every stream, so row ``b`` of batch ``i + 1`` continues row ``b`` of batch ``i``
and the hidden state can be carried (detached) from one batch to the next::

    stream 0: [w0 | w1 | w2 | ...]        batch i = rows (stream b, window i), shape (B, T)
    stream 1: [w0 | w1 | w2 | ...]

Window ``i`` of stream ``b`` starts at ``b * ((N - 1) // B) + i * T``. This is the one
layout of every engine: the NumPy reference trainer (``reference/charlm.py``), the NumPy
engine and the torch data modules, so a
window index is the same data position everywhere and runs move between engines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np


@dataclass(frozen=True)
class StreamLayout:
    """How ``n_tokens`` ids split into ``n_streams`` streams of windows of ``seq_len``."""

    n_tokens: int
    n_streams: int
    seq_len: int
    drop_last: bool = True  # training: full windows only; evaluation keeps a short last one

    @property
    def stream_len(self) -> int:
        """Inputs per stream (each stream needs one extra id for the last target)."""
        return (self.n_tokens - 1) // self.n_streams

    @property
    def n_windows(self) -> int:
        if self.drop_last:
            return self.stream_len // self.seq_len
        return -(-self.stream_len // self.seq_len)

    def window(self, ids: np.ndarray, index: int, streams: slice = slice(None)) -> Tuple[np.ndarray, np.ndarray]:
        """Inputs and targets (B, T) of window ``index`` (int64)."""
        S, T = self.stream_len, self.seq_len
        start = index * T
        t = min(T, S - start)
        starts = np.arange(self.n_streams)[streams] * S + start  # (B,)
        rows = np.asarray(ids[starts[:, None] + np.arange(t + 1)[None, :]], dtype=np.int64)  # (B, t+1)
        return rows[:, :-1], rows[:, 1:]

    def tokens_per_pass(self) -> int:
        return self.n_streams * (self.n_windows * self.seq_len if self.drop_last else self.stream_len)
