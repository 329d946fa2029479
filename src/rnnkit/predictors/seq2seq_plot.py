"""The attention matrix of one translation as a matplotlib Figure."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def attention_figure(w: np.ndarray, src_pieces: Sequence[str], tgt_pieces: Sequence[str]):
    """Target rows (plus the end of sentence) x source columns, weights in [0, 1]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(tgt_pieces) + ["</s>"]
    fig, ax = plt.subplots(figsize=(max(4, 0.45 * len(src_pieces) + 2), max(3, 0.4 * len(rows) + 1.5)))
    im = ax.imshow(w[: len(rows), : len(src_pieces)], cmap="viridis", aspect="auto", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="attention weight")
    ax.set_xticks(range(len(src_pieces)), labels=list(src_pieces), rotation=60, ha="right")
    ax.set_yticks(range(len(rows)), labels=rows)
    ax.set_xlabel("source (subwords)")
    ax.set_ylabel("translation (subwords)")
    fig.tight_layout()
    return fig
