"""``rnnkit evaluate`` for sentiment checkpoints: accuracy, macro-F1, ROC-AUC, confusion matrix,
and (``--baseline``) TF-IDF + logistic regression fitted on the same training split."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict

from ..errors import ConfigError

SPLITS = ("train", "val", "test", "all")


def eval_table(dc: Dict[str, Any], data: str, split: str, args):
    """The labelled texts to score: a split of the training data's layout, or a whole file."""
    from ..data import sentiment as sd
    from ..training.recipes.sentiment import load_splits_for

    text_col = getattr(args, "text_col", None) or dc.get("text_col", "text")
    label_col = getattr(args, "label_col", None) or dc.get("label_col", "label")
    if data in sd.NAMED or split != "all":
        splits = load_splits_for({**dc, "text_col": text_col, "label_col": label_col}, data)
        return splits.get(split), splits.label_names
    return sd.read_path(data, text_col, label_col, dc.get("header", True) and not getattr(args, "no_header", False),
                        dc.get("encoding", "utf-8"))


def evaluate_sentiment(args) -> int:
    from .. import checkpoint as ckpt_io

    ckpt = ckpt_io.load_checkpoint(Path(args.checkpoint), expect_task=["sentiment"])
    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from ..data import sentiment as sd
    from ..tasks import sentiment as st
    from ..training.recipes.sentiment import dataset_key, load_splits_for

    dc = ckpt.config["data"]
    data = dataset_key(args.data) if args.data else dc["data"]
    same = data == dc["data"]
    split = getattr(args, "split", None) or ("test" if same or data in sd.NAMED else "all")
    if split not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    sd.check_overlap(dc["data"] if dc["data"] in sd.NAMED else "", data)
    table, names = eval_table(dc, data, split, args)
    names = {**names, **dc.get("label_names", {})}
    classes = dc["classes"]
    y = sd.label_ids(table.labels, classes, names, f"{args.data or data}")
    vocab = sd.Vocab.from_json(dc["vocab"])
    ids, cut = sd.encode_texts(vocab, table.texts, dc["max_tokens"], dc["truncate"])
    n_tok = sum(len(a) for a in ids)
    unk = sum(int((a == 1).sum()) for a in ids)
    encoder, task = st.load_model(ckpt)
    t0 = time.perf_counter()
    probs = st.predict_proba(encoder, task, ids)
    seconds = time.perf_counter() - t0
    result: Dict[str, Any] = {"checkpoint": str(args.checkpoint), "data": data, "split": split,
                              **st.metrics(y, probs, classes),
                              "unknown_token_rate": unk / max(n_tok, 1), "truncated": cut,
                              "texts_per_second": len(ids) / max(seconds, 1e-9)}
    if getattr(args, "baseline", False):
        from ..tasks.sentiment_baseline import fit_baseline

        splits = load_splits_for(dc)
        tr_y = sd.label_ids(splits.train.labels, classes, splits.label_names, "baseline train")
        va_y = sd.label_ids(splits.val.labels, classes, splits.label_names, "baseline validation")
        fit = fit_baseline(splits.train.texts, tr_y, splits.val.texts, va_y, lowercase=vocab.lowercase)
        bprobs = fit["model"].predict_proba(list(table.texts))
        full = np.zeros((len(table), len(classes)))
        full[:, fit["model"].classes_] = bprobs
        result["baseline"] = {"name": "tfidf-word1-2+char2-5 + logistic regression", "C": fit["C"],
                              "fit_seconds": fit["fit_seconds"], **st.metrics(y, full, classes)}
    if args.json:
        print(json.dumps(result))
        return 0
    rows = [("model", result)] + ([("TF-IDF+LR", result["baseline"])] if "baseline" in result else [])
    print(f"{data} [{split}]: {result['examples']} texts, classes {', '.join(classes)}")
    for label, r in rows:
        auc = f", ROC-AUC {r['roc_auc']:.4f}" if r.get("roc_auc") is not None else ""
        print(f"  {label:10s} accuracy {r['accuracy']:.4f}, macro-F1 {r['macro_f1']:.4f}{auc}, loss {r['loss']:.4f}")
    print("  confusion matrix (rows: true, columns: predicted):")
    shown = [dc.get("label_names", {}).get(c, c) for c in classes]
    width = max(max(len(c) for c in shown), len(str(result["examples"]))) + 2
    print("  " + " " * width + "".join(f"{c:>{width}}" for c in shown))
    for c, row in zip(shown, result["confusion_matrix"]):
        print("  " + f"{c:>{width}}" + "".join(f"{v:>{width}}" for v in row))
    return 0
