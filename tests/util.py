"""Helpers shared by tests: deterministic tiny corpora and CLI argument lists."""

from __future__ import annotations

import random
from pathlib import Path

WORDS = ("the king is dead long live the queen my lord what say you to this "
         "good night sweet prince and flights of angels sing thee to thy rest").split()


def make_text(n_lines: int = 400, seed: int = 0) -> str:
    """A small deterministic play-like text (speaker lines and verse)."""
    rng = random.Random(seed)
    lines = []
    for i in range(n_lines):
        if i % 4 == 0:
            lines.append(rng.choice(["KING:", "QUEEN:", "HAMLET:", "ROMEO:"]))
        else:
            lines.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))).capitalize() + ".")
    return "\n".join(lines) + "\n"


def tiny_train_args(corpus: Path, out: Path, *extra: str):
    """CLI arguments for a few-second charlm run on a tiny corpus."""
    return ["train", "charlm", "--data", str(corpus), "--out", str(out), "--hidden", "16",
            "--layers", "2", "--embedding-dim", "8", "--seq-len", "16", "--batch-size", "4",
            "--val-every", "5", "--checkpoint-every", "3", "--no-progress", "--logger", "none",
            "--warmup-steps", "2", *extra]


def tiny_charlm_parts():
    """Weights and config of the smallest valid charlm checkpoint (an Elman RNN, hidden 2,
    vocabulary 'abc'): what rnnkit.checkpoint_schema accepts, for format-level tests."""
    import numpy as np

    rng = np.random.default_rng(0)
    shapes = {"encoder.weight_ih_l0": (2, 2), "encoder.weight_hh_l0": (2, 2), "encoder.bias_ih_l0": (2,),
              "encoder.bias_hh_l0": (2,), "task.embedding.weight": (3, 2), "task.head.weight": (3, 2),
              "task.head.bias": (3,)}
    weights = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    config = {"task": "charlm", "model": {"encoder": "rnn", "hidden_size": 2, "num_layers": 1, "dropout": 0.0,
                                          "embedding_dim": 2, "tie_weights": False},
              "data": {"vocab": ["a", "b", "c"]}}
    return weights, config
