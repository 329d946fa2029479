"""The classical baseline reported next to every sentiment model: TF-IDF + logistic regression.

Features: TF-IDF of word 1-2-grams plus TF-IDF of character 2-5-grams within word
boundaries (sublinear tf, ``min_df=2``), the strong linear baseline of Wang & Manning 2012
and most text-classification papers since. The inverse regularisation ``C`` is chosen on the
validation split (never the test split), the model is fitted on the training split alone, the
same split the recurrent model trains on. scikit-learn only (no torch).
"""

from __future__ import annotations

import time
from typing import Dict, Sequence

import numpy as np

from ..data.sentiment import tokenize

C_GRID = (0.5, 2.0, 8.0)


def make_pipeline(C: float = 2.0, lowercase: bool = True, seed: int = 0):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline as mk, make_union

    words = TfidfVectorizer(tokenizer=lambda t: tokenize(t, "word", lowercase), token_pattern=None,
                            lowercase=False, ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=400_000)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True,
                            lowercase=lowercase, max_features=400_000)
    return mk(make_union(words, chars), LogisticRegression(C=C, max_iter=2000, random_state=seed))


def fit_baseline(train_texts: Sequence[str], train_y: np.ndarray, val_texts: Sequence[str], val_y: np.ndarray,
                 grid: Sequence[float] = C_GRID, lowercase: bool = True) -> Dict[str, object]:
    """Choose C on validation accuracy; returns ``{"model", "C", "val_accuracy", "fit_seconds"}``.

    The features are fitted once on the training split and shared across the grid.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    t0 = time.perf_counter()
    pipe = make_pipeline(grid[0], lowercase)
    features = pipe.steps[0][1]
    Xtr = features.fit_transform(list(train_texts))
    Xva = features.transform(list(val_texts))
    best = None
    for C in grid:
        clf = LogisticRegression(C=C, max_iter=2000, random_state=0).fit(Xtr, train_y)
        acc = float((clf.predict(Xva) == val_y).mean())
        if best is None or acc > best[0]:
            best = (acc, C, clf)
    acc, C, clf = best
    model = Pipeline([("features", features), ("clf", clf)])
    return {"model": model, "C": C, "val_accuracy": acc, "fit_seconds": time.perf_counter() - t0}
