"""Sentiment metrics in NumPy + scikit-learn (torch-free: ONNX-backed predictors use them too)."""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np


def metrics(y_true: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> Dict[str, object]:
    """Accuracy, macro-F1, cross-entropy, ROC-AUC (binary), confusion matrix (rows: true)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, log_loss, roc_auc_score

    labels = list(range(len(classes)))
    pred = probs.argmax(1)
    out: Dict[str, object] = {
        "examples": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, pred)),
        "macro_f1": float(f1_score(y_true, pred, labels=labels, average="macro", zero_division=0)),
        "loss": float(log_loss(y_true, np.clip(probs, 1e-12, 1), labels=labels)),
    }
    if len(classes) == 2:
        out["roc_auc"] = float(roc_auc_score(y_true, probs[:, 1])) if len(set(y_true.tolist())) == 2 else None
    out["confusion_matrix"] = confusion_matrix(y_true, pred, labels=labels).tolist()
    out["classes"] = list(classes)
    return out
