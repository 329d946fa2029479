"""The sentiment predictor: labels and probabilities for texts (``rnnkit predict``, ``rnnkit evaluate``).

Tokenising, truncating and labelling happen here in NumPy; the network
(:class:`~rnnkit.predictors.nets.SentimentNet`) turns id arrays into class probabilities in
length-sorted batches, so one call with many texts costs about what the modules cost.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from ..errors import ConfigError
from .base import Predictor, as_texts

SPLITS = ("train", "val", "test", "all")


class SentimentPredictor(Predictor):
    """A text classifier.

    >>> m = rnnkit.load("runs/sst2")                                  # doctest: +SKIP
    >>> m.predict(["a gorgeous, witty film", "a dull mess"])          # doctest: +SKIP
    [{'label': 'positive', 'probability': 0.97, 'probabilities': {...}}, ...]
    """

    task = "sentiment"
    headline = "accuracy"

    def __init__(self, config: Dict[str, Any], net: Any, path=None) -> None:
        super().__init__(config, net, path)
        from ..data.sentiment import Vocab

        d = config["data"]
        self.vocab = Vocab.from_json(d["vocab"])
        self.classes: List[str] = list(d["classes"])
        self.labels: List[str] = [d.get("label_names", {}).get(c, c) for c in self.classes]

    def encode(self, texts: Sequence[str]):
        """Token ids per text (truncated as in training) and how many texts were truncated."""
        from ..data.sentiment import encode_texts

        d = self.config["data"]
        return encode_texts(self.vocab, texts, d["max_tokens"], d["truncate"])

    def proba(self, texts: Union[str, Sequence[str]]) -> np.ndarray:
        """Class probabilities ``(N, C)`` (columns in the order of :attr:`labels`)."""
        ids, _ = self.encode(as_texts(texts))
        return self.net.proba(ids)

    def predict(self, texts: Union[str, Sequence[str]]) -> List[Dict[str, Any]]:
        """One ``{"label", "probability", "probabilities": {label: p}}`` per text, in order."""
        probs = self.proba(texts)
        best = probs.argmax(1)
        return [{"label": self.labels[b], "probability": float(p[b]),
                 "probabilities": {n: float(v) for n, v in zip(self.labels, p)}} for p, b in zip(probs, best)]

    # -- evaluation ------------------------------------------------------------------------
    def _table(self, data: str, split: str, text_col: Optional[str], label_col: Optional[str], header: bool):
        from ..data import sentiment as sd

        dc = self.config["data"]
        text_col, label_col = text_col or dc.get("text_col", "text"), label_col or dc.get("label_col", "label")
        if data in sd.NAMED or split != "all":
            splits = sd.load_splits_for({**dc, "text_col": text_col, "label_col": label_col}, data)
            return splits.get(split), splits.label_names
        return sd.read_path(data, text_col, label_col, dc.get("header", True) and header, dc.get("encoding", "utf-8"))

    def evaluate(self, data: Optional[str] = None, split: Optional[str] = None, baseline: bool = False,
                 text_col: Optional[str] = None, label_col: Optional[str] = None, header: bool = True) -> Dict[str, Any]:
        """Accuracy, macro-F1, ROC-AUC, loss and confusion matrix on a split of the training data
        or a named set (default: its test split) or a whole labelled file; with ``baseline``,
        TF-IDF + logistic regression fitted on the same training split scored beside it."""
        from ..data import sentiment as sd
        from ..tasks.sentiment_metrics import metrics

        dc = self.config["data"]
        data = sd.dataset_key(data) if data else dc["data"]
        split = split or ("test" if data == dc["data"] or data in sd.NAMED else "all")
        if split not in SPLITS:
            raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
        sd.check_overlap(dc["data"] if dc["data"] in sd.NAMED else "", data)
        table, names = self._table(data, split, text_col, label_col, header)
        names = {**names, **dc.get("label_names", {})}
        y = sd.label_ids(table.labels, self.classes, names, str(data))
        ids, cut = self.encode(table.texts)
        n_tok = sum(len(a) for a in ids)
        unk = sum(int((a == 1).sum()) for a in ids)
        t0 = time.perf_counter()
        probs = self.net.proba(ids)
        seconds = time.perf_counter() - t0
        result: Dict[str, Any] = {"checkpoint": str(self.path), "data": data, "split": split,
                                  **metrics(y, probs, self.classes),
                                  "unknown_token_rate": unk / max(n_tok, 1), "truncated": cut,
                                  "texts_per_second": len(ids) / max(seconds, 1e-9)}
        if baseline:
            result["baseline"] = self._baseline(table, y)
        return result

    def _baseline(self, table, y: np.ndarray) -> Dict[str, Any]:
        from ..data import sentiment as sd
        from ..tasks.sentiment_baseline import fit_baseline
        from ..tasks.sentiment_metrics import metrics

        splits = sd.load_splits_for(self.config["data"])
        tr_y = sd.label_ids(splits.train.labels, self.classes, splits.label_names, "baseline train")
        va_y = sd.label_ids(splits.val.labels, self.classes, splits.label_names, "baseline validation")
        fit = fit_baseline(splits.train.texts, tr_y, splits.val.texts, va_y, lowercase=self.vocab.lowercase)
        full = np.zeros((len(table), len(self.classes)))
        full[:, fit["model"].classes_] = fit["model"].predict_proba(list(table.texts))
        return {"name": "tfidf-word1-2+char2-5 + logistic regression", "C": fit["C"],
                "fit_seconds": fit["fit_seconds"], **metrics(y, full, self.classes)}

    def describe(self, result: Dict[str, Any]) -> str:
        rows = [("model", result)] + ([("TF-IDF+LR", result["baseline"])] if "baseline" in result else [])
        lines = [f"{result['data']} [{result['split']}]: {result['examples']} texts, classes {', '.join(self.classes)}"]
        for label, r in rows:
            auc = f", ROC-AUC {r['roc_auc']:.4f}" if r.get("roc_auc") is not None else ""
            lines.append(f"  {label:10s} accuracy {r['accuracy']:.4f}, macro-F1 {r['macro_f1']:.4f}{auc}, "
                         f"loss {r['loss']:.4f}")
        if "baseline" in result:
            m, b = result["accuracy"], result["baseline"]["accuracy"]
            lines.append(f"  the model {'beats' if m > b else 'ties' if m == b else 'loses to'} the baseline "
                         f"on accuracy ({m:.4f} vs {b:.4f})")
        lines.append("  confusion matrix (rows: true, columns: predicted):")
        width = max(max(len(c) for c in self.labels), len(str(result["examples"]))) + 2
        lines.append("  " + " " * width + "".join(f"{c:>{width}}" for c in self.labels))
        for c, row in zip(self.labels, result["confusion_matrix"]):
            lines.append("  " + f"{c:>{width}}" + "".join(f"{v:>{width}}" for v in row))
        return "\n".join(lines)
