"""Recipe for ``sentiment``: labelled texts -> seeded splits -> vocabulary -> length-bucketed batches.

The vocabulary and the class list are built from the training split only and saved in the
checkpoint's data config (with the split settings, so ``rnnkit evaluate`` rebuilds the very
same test split). Training batches are shuffled per epoch from ``(run seed, epoch)`` and
bucketed by length; each carries ``(epoch, index)`` so a resumed run continues exactly.

``--embeddings FILE`` initialises the embedding rows of vocabulary words from pretrained
vectors (:mod:`rnnkit.data.vectors`); the file's path and sha256 go into the data config,
the rows themselves into the weights, so evaluation never reads the file.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import lightning as L
import numpy as np

from ...data import sentiment as sd
from ...data.sentiment import dataset_key, load_splits_for  # noqa: F401  (the recipe's own names)
from ...data import vectors
from ...errors import ConfigError, DataError
from ...tasks import sentiment as st
from ..config import SENTIMENT_EMBEDDING_DIM
from ..datamodule import EpochBatches, FixedBatches, bucketed_batches, loader
from . import Prepared


class ExampleDataModule(L.LightningDataModule):
    """Independent examples: endless seeded training epochs, one fixed validation pass."""

    def __init__(self, train_ids, train_y, val_ids, val_y, batch_size: int, seed: int, bucket: bool,
                 start: Tuple[int, int] = (0, 0)) -> None:
        super().__init__()
        self.train_ids, self.train_y, self.val_ids, self.val_y = train_ids, train_y, val_ids, val_y
        self.batch_size, self.seed, self.bucket, self.start = batch_size, seed, bucket, start
        self.lengths = np.array([len(a) for a in train_ids])

    def make_epoch(self, epoch: int) -> list:
        rng = np.random.default_rng([self.seed, epoch])
        if self.bucket:
            return bucketed_batches(self.lengths, self.batch_size, rng)
        order = rng.permutation(len(self.lengths))
        return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def _collate_train(self, idx):
        return st.collate([self.train_ids[i] for i in idx], self.train_y[idx])

    def _collate_val(self, idx):
        return st.collate([self.val_ids[i] for i in idx], self.val_y[idx])

    def train_dataloader(self):
        world, rank = self.trainer.world_size, self.trainer.global_rank
        return loader(EpochBatches(self.make_epoch, self._collate_train, self.start, rank, world))

    def val_dataloader(self):
        if not len(self.val_ids):
            return []
        lengths = np.array([len(a) for a in self.val_ids])
        return loader(FixedBatches(st.eval_batches(lengths), self._collate_val))


def _vectors_path(cfg) -> Optional[Path]:
    """The --embeddings file, checked before the data set is read (cheap refusals first)."""
    if not cfg.model.embeddings:
        return None
    if cfg.data.tokenizer != "word":
        raise ConfigError(f"{cfg.model.embeddings}: --embeddings holds word vectors, which need --tokenizer word "
                          f"(got --tokenizer {cfg.data.tokenizer})")
    return vectors.check_vectors_path(cfg.model.embeddings)


def prepare(cfg, saved_data: Optional[Dict[str, Any]], start: Optional[Tuple[int, int]]) -> Prepared:
    """Data, vocabulary and model of a sentiment run.

    With ``--embeddings`` (fresh runs only: a resumed run's rows are in its checkpoint) the
    vocabulary's rows are read from the file and copied into the embedding. ``cfg.model`` is
    updated with the resolved ``embedding_dim`` (None means the file's size, else 128), so the
    checkpoint records the size the weights have.
    """
    d = cfg.data
    vectors_path = None if saved_data else _vectors_path(cfg)
    splits = load_splits_for(asdict(d))
    if saved_data:
        vocab = sd.Vocab.from_json(saved_data["vocab"])
        classes = list(saved_data["classes"])
    else:
        vocab = sd.Vocab.build(splits.train.texts, d.tokenizer, d.lowercase, d.min_freq, d.max_vocab)
        classes = sd.sort_classes(splits.train.labels)
    if len(set(splits.train.labels)) < 2:
        raise DataError(f"{d.data}: the training split holds only one class")
    train_ids, train_cut = sd.encode_texts(vocab, splits.train.texts, d.max_tokens, d.truncate)
    val_ids, val_cut = sd.encode_texts(vocab, splits.val.texts, d.max_tokens, d.truncate)
    train_y = sd.label_ids(splits.train.labels, classes, splits.label_names, f"{d.data} (train)")
    val_y = sd.label_ids(splits.val.labels, classes, splits.label_names, f"{d.data} (validation)")
    pretrained = None
    if vectors_path is not None:
        pretrained = vectors.read_vectors(vectors_path, vocab.tokens, vocab.lowercase, cfg.model.embedding_dim)
        print(pretrained.coverage(), file=sys.stderr, flush=True)  # a note: stdout is for results
    if cfg.model.embedding_dim is None:
        cfg.model = replace(cfg.model, embedding_dim=pretrained.dim if pretrained else SENTIMENT_EMBEDDING_DIM)
    encoder, task = st.build(asdict(cfg.model), len(vocab), len(classes))
    if pretrained is not None:
        task.load_vectors(pretrained.matrix, pretrained.found)
    if cfg.model.freeze_embeddings:  # the optimizer skips parameters that need no gradient
        task.embedding.weight.requires_grad_(False)
    dm = ExampleDataModule(train_ids, train_y, val_ids, val_y, d.batch_size, cfg.run.seed, d.bucket,
                           start=start or (0, 0))

    def final_eval(module) -> Dict[str, float]:
        probs = st.predict_proba(module.encoder, module.task, val_ids)
        m = st.metrics(val_y, probs, classes)
        return {f"val_{k}": float(m[k]) for k in ("accuracy", "macro_f1", "loss", "roc_auc")
                if m.get(k) is not None}

    data_config = {
        **asdict(d), "data": dataset_key(d.data), "vocab": vocab.to_json(), "classes": classes,
        "label_names": {c: splits.label_names.get(c, c) for c in classes},
        "sizes": {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)},
    }
    if pretrained is not None:
        data_config["pretrained_embeddings"] = pretrained.provenance()
    elif saved_data and "pretrained_embeddings" in saved_data:
        data_config["pretrained_embeddings"] = saved_data["pretrained_embeddings"]
    lengths = np.array([len(a) for a in train_ids])
    info = {"data": d.data, "train": len(splits.train), "validation": len(splits.val), "test": len(splits.test),
            "classes": ", ".join(classes), "vocabulary": len(vocab),
            "tokens per text (median/max)": f"{int(np.median(lengths))}/{int(lengths.max())}",
            "truncated to --max-tokens": f"{train_cut} train, {val_cut} validation ({d.truncate})"}
    return Prepared(dm, encoder, task, data_config, final_eval, info)
