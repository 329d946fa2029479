"""Sentiment tests: one torch thread, tiny synthetic review tables."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

POS = ["great", "wonderful", "moving", "superb", "charming", "brilliant", "delightful", "fun"]
NEG = ["awful", "boring", "dull", "terrible", "lifeless", "clumsy", "tedious", "bad"]
FILLER = ["the", "film", "movie", "plot", "was", "acting", "story", "and", "a", "it", "this", "really"]



def synthetic_reviews(n: int, seed: int = 0):
    """(text, label) pairs: the label decides which sentiment words appear among fillers."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 14))]
        for _ in range(rng.randint(1, 2)):
            words.insert(rng.randrange(len(words) + 1), rng.choice(POS if label else NEG))
        rows.append((" ".join(words), label))
    return rows


def write_csv(path: Path, rows, header=("text", "label"), sep=",") -> Path:
    lines = [sep.join(header)] if header else []
    for text, label in rows:
        lines.append(f"{text}{sep}{label}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def reviews_csv(tmp_path) -> Path:
    return write_csv(tmp_path / "reviews.csv", synthetic_reviews(200))
