"""Fixtures for the seq2seq tests: one CPU thread (the machine is shared), tiny parallel corpora."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

SHARED_M30K = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "multi30k"

# a toy "language pair": each English word has one German word; adjectives move after the noun
LEXICON = {"the": "der", "a": "ein", "red": "rote", "big": "grosse", "small": "kleine", "dog": "hund",
           "cat": "katze", "man": "mann", "runs": "rennt", "sleeps": "schlaeft", "eats": "isst",
           "green": "gruene", "bird": "vogel", "sings": "singt", "old": "alte", "woman": "frau"}
DETS, ADJS, NOUNS, VERBS = ["the", "a"], ["red", "big", "small", "green", "old"], \
    ["dog", "cat", "man", "bird", "woman"], ["runs", "sleeps", "eats", "sings"]


def toy_pairs(n: int, seed: int = 0):
    rng = random.Random(seed)
    src, tgt = [], []
    for _ in range(n):
        d, a, no, v = rng.choice(DETS), rng.choice(ADJS), rng.choice(NOUNS), rng.choice(VERBS)
        src.append(f"{d} {a} {no} {v} .")
        tgt.append(f"{LEXICON[d]} {LEXICON[no]} {LEXICON[a]} {LEXICON[v]} .")
    return src, tgt



@pytest.fixture
def toy_files(tmp_path):
    """(src.txt, tgt.de.gz) with 400 aligned toy pairs; the target side gzipped."""
    src, tgt = toy_pairs(400)
    s, t = tmp_path / "train.en", tmp_path / "train.de.gz"
    s.write_text("".join(x + "\n" for x in src), encoding="utf-8")
    with gzip.open(t, "wt", encoding="utf-8") as f:
        f.write("".join(x + "\n" for x in tgt))
    return s, t
