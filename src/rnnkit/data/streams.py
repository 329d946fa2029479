"""Contiguous token streams for truncated backpropagation through time (char-rnn style).

The id array is cut into ``n_streams`` equal contiguous streams; batch ``i`` holds window
``i`` of every stream, so row ``b`` of batch ``i + 1`` continues row ``b`` of batch ``i``
and the hidden state can be carried (detached) from one batch to the next::

    stream 0: [w0 | w1 | w2 | ...]        batch i = rows (stream b, window i), shape (B, T)
    stream 1: [w0 | w1 | w2 | ...]

The layout itself lives in ``rnnkit.reference.streams`` (NumPy only, so the reference
trainer uses the very same one); this module is where the data side finds it.
"""

from __future__ import annotations

from typing import Iterator, Tuple

import numpy as np

from ..reference.streams import StreamLayout  # the one layout (NumPy only), shared by every engine

__all__ = ["StreamLayout", "iter_windows"]


def iter_windows(ids: np.ndarray, layout: StreamLayout) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    for i in range(layout.n_windows):
        yield layout.window(ids, i)
