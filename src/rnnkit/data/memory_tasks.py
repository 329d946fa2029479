"""Synthetic and small real long-range memory tasks (NumPy only; every draw from a given RNG).

* **Adding problem** (Hochreiter & Schmidhuber 1997; Le et al. 2015; Arjovsky et al. 2016):
  x_t = (u_t, m_t) with u_t ~ U(0, 1) and exactly two markers m_t = 1, one in each half of the
  sequence; the target is the sum of the two marked values. Always answering 1 (the mean)
  scores MSE = Var(u + u') = 1/6 ≈ 0.167: the trivial baseline.
* **Copy memory** (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016): ``length`` symbols
  from {1..8}, then ``delay - 1`` blanks (0), a delimiter (9) and ``length`` blanks; the
  output is blank everywhere except the last ``length`` steps, which repeat the symbols.
  Sequence length ``delay + 2 * length``. A memoryless model predicts blanks, then a uniform
  guess: cross-entropy ``length * ln 8 / (delay + 2 * length)`` per step, the baseline.
* **Sequential digits**: scikit-learn's bundled 8x8 digits read pixel by pixel (64 steps, one
  intensity in [0, 1] per step), the small offline analogue of sequential MNIST (Le et al.
  2015); the permuted variant applies one fixed random permutation of the 64 pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Tuple

import numpy as np

ADDING_BASELINE = 1.0 / 6.0
COPY_SYMBOLS = 8
COPY_VOCAB = COPY_SYMBOLS + 2  # 0 blank, 1..8 symbols, 9 delimiter
COPY_DELIMITER = COPY_SYMBOLS + 1


def adding_problem(n: int, T: int, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """``n`` sequences of length ``T`` >= 2: x (n, T, 2) float32, target (n,) float32."""
    if T < 2:
        raise ValueError(f"the adding problem needs T >= 2, got {T}")
    values = rng.uniform(0.0, 1.0, (n, T))
    half = T // 2
    first = rng.integers(0, half, n)
    second = rng.integers(half, T, n)
    markers = np.zeros((n, T))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1).astype(np.float32)  # (n, T, 2)
    y = (values[rows, first] + values[rows, second]).astype(np.float32)  # (n,)
    return x, y


def copy_memory(n: int, delay: int, rng: np.random.Generator, length: int = 10
                ) -> Tuple[np.ndarray, np.ndarray]:
    """Input ids (n, delay + 2 * length) int64 and target ids of the same shape."""
    if delay < 1 or length < 1:
        raise ValueError(f"copy memory needs delay >= 1 and length >= 1, got {delay}, {length}")
    total = delay + 2 * length
    symbols = rng.integers(1, COPY_SYMBOLS + 1, (n, length))
    x = np.zeros((n, total), np.int64)
    x[:, :length] = symbols
    x[:, length + delay - 1] = COPY_DELIMITER
    y = np.zeros((n, total), np.int64)
    y[:, -length:] = symbols
    return x, y


def copy_baseline(delay: int, length: int = 10) -> float:
    """Cross-entropy (nats per step) of the best memoryless predictor."""
    return length * math.log(COPY_SYMBOLS) / (delay + 2 * length)


@dataclass
class DigitSplits:
    """Pixel sequences (n, 64, 1) float32 in [0, 1] and labels (n,) int64, split 70/15/15."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    permutation: np.ndarray  # the pixel order used (identity unless permuted)


def sequential_digits(permuted: bool = False, seed: int = 0, permutation_seed: int = 1234) -> DigitSplits:
    """scikit-learn's 1,797 8x8 digits as 64-step sequences; stratified 70/15/15 split.

    The split depends on ``seed`` only; the permutation (when ``permuted``) on
    ``permutation_seed`` only, so both variants share the same examples in each split.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)  # (1797, 64)
    y = digits.target.astype(np.int64)
    perm = np.random.default_rng(permutation_seed).permutation(64) if permuted else np.arange(64)
    x = x[:, perm][:, :, None]  # (n, 64, 1)
    x_train, x_rest, y_train, y_rest = train_test_split(x, y, test_size=0.3, random_state=seed, stratify=y)
    x_val, x_test, y_val, y_test = train_test_split(x_rest, y_rest, test_size=0.5, random_state=seed,
                                                    stratify=y_rest)
    return DigitSplits(x_train, y_train, x_val, y_val, x_test, y_test, perm)
