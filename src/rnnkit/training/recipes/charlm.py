"""Recipe for ``charlm``: corpus -> memory-mapped ids -> contiguous BPTT streams.

:func:`load_corpus` is the data half, torch-free, shared with the NumPy engine
(``training/numpy_engine.py``); :func:`prepare` adds the torch model and data module.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from ...data.datasets import corpus_path
from ...data.text import CharVocab, encode_corpus
from ...errors import DataError
from . import Prepared


@dataclass
class CharCorpus:
    """The char-LM's data, read the same way by both engines."""

    path: Path
    train_ids: Any  # 1-D int ids (a memory map)
    val_ids: Optional[Any]  # None when the split holds fewer than 2 characters
    vocab_size: int
    data_config: Dict[str, Any]  # saved as config.json "data"
    info: Dict[str, Any]


def load_corpus(cfg, saved_data: Optional[Dict[str, Any]]) -> CharCorpus:
    """Encode the corpus (with a resumed run's vocabulary), check it is the one a resumed run
    was trained on, split it and check one BPTT window fits. torch-free (the NumPy engine's too)."""
    path = corpus_path(cfg.data.data)
    vocab = CharVocab.from_json(saved_data["vocab"]) if saved_data else None
    corpus = encode_corpus(path, name=cfg.data.data, vocab=vocab)
    fingerprint = ids_sha256(corpus.ids)
    if saved_data and saved_data.get("ids_sha256") not in (None, fingerprint):
        raise DataError(f"{path}: not the corpus this run was trained on ({len(corpus)} characters now, "
                        f"{saved_data.get('characters')} then, or the text changed); resuming needs the same data")
    train_ids, val_ids = corpus.split(cfg.data.val_fraction)
    need = cfg.data.batch_size * cfg.data.seq_len + 1
    if len(train_ids) < need:
        raise DataError(
            f"{path}: corpus too short: {len(train_ids)} training characters, but one BPTT window "
            f"for each of --batch-size {cfg.data.batch_size} streams needs {need} "
            f"(--seq-len {cfg.data.seq_len}); lower --batch-size or --seq-len"
        )
    if len(val_ids) < 2:
        val_ids = None
    info = {"corpus": str(path), "characters": len(corpus), "vocabulary": len(corpus.vocab),
            "train": len(train_ids), "validation": 0 if val_ids is None else len(val_ids)}
    data_config = {"corpus": cfg.data.data, "path": str(Path(path).resolve()), "vocab": corpus.vocab.to_json(),
                   "characters": len(corpus), "ids_sha256": fingerprint}
    return CharCorpus(Path(path), train_ids, val_ids, len(corpus.vocab), data_config, info)


def prepare(cfg, saved_data: Optional[Dict[str, Any]], start: Optional[Tuple[int, int]]) -> Prepared:
    from ...tasks import charlm
    from ..datamodule import StreamDataModule

    data = load_corpus(cfg, saved_data)
    val_ids = data.val_ids
    encoder, task = charlm.build(asdict(cfg.model), data.vocab_size)
    dm = StreamDataModule(data.train_ids, val_ids, cfg.data.batch_size, cfg.data.seq_len, start=start or (0, 0))

    def final_eval(module) -> Dict[str, float]:
        """The whole validation split (periodic validation may be limited by --val-batches),
        scored as ``rnnkit evaluate`` scores it."""
        if val_ids is None:
            return {}
        loss, _ = charlm.score_ids(module.encoder, module.task, val_ids, n_streams=charlm.EVAL_STREAMS,
                                   seq_len=cfg.data.seq_len)
        return {"val_loss": loss, "val_bpc": loss / math.log(2)}

    return Prepared(dm, encoder, task, data.data_config, final_eval, data.info)


def ids_sha256(ids) -> str:
    """Content fingerprint of an encoded corpus (streams through a memory map in blocks)."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    for i in range(0, len(ids), 1 << 24):
        h.update(np.ascontiguousarray(ids[i:i + (1 << 24)]).tobytes())
    return h.hexdigest()
