"""Recipe for ``seq2seq``: sentence pairs -> subword ids -> length-bucketed batches.

The subword vocabularies (SentencePiece) are trained on the training pairs only and saved in
the checkpoint's data config (base64 of the model protobuf). Training batches are shuffled
per epoch from ``(run seed, epoch)`` and bucketed by pair length; each carries ``(epoch,
index)`` so a resumed run continues exactly. The final score is greedy BLEU/chrF on the
validation pairs (never the test split).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import lightning as L
import numpy as np
import torch

from ...data import parallel as pd
from ...errors import DataError
from ...tasks import seq2seq as s2s
from ..datamodule import EpochBatches, FixedBatches, bucketed_batches, loader
from . import Prepared


def collate(src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]]) -> Dict[str, torch.Tensor]:
    """Pairs of id lists -> padded tensors with true lengths on both sides.

    ``tgt_in`` = BOS + target, ``tgt_out`` = target + EOS (both ``len + 1`` long).
    """
    src_t, src_len = s2s.pad_batch(src)
    tgt_in, tgt_len = s2s.pad_batch([[pd.BOS] + list(t) for t in tgt])
    tgt_out, _ = s2s.pad_batch([list(t) + [pd.EOS] for t in tgt])
    return {"src": src_t, "src_len": src_len, "tgt_in": tgt_in, "tgt_out": tgt_out, "tgt_len": tgt_len}


def eval_batches(lengths: np.ndarray, batch_size: int) -> List[np.ndarray]:
    order = np.argsort(lengths, kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


class PairDataModule(L.LightningDataModule):
    def __init__(self, train_src, train_tgt, val_src, val_tgt, batch_size: int, seed: int,
                 start: Tuple[int, int] = (0, 0)) -> None:
        super().__init__()
        self.train_src, self.train_tgt, self.val_src, self.val_tgt = train_src, train_tgt, val_src, val_tgt
        self.batch_size, self.seed, self.start = batch_size, seed, start
        self.lengths = np.array([max(len(a), len(b)) for a, b in zip(train_src, train_tgt)])

    def make_epoch(self, epoch: int) -> list:
        return bucketed_batches(self.lengths, self.batch_size, np.random.default_rng([self.seed, epoch]))

    def _collate_train(self, idx):
        return collate([self.train_src[i] for i in idx], [self.train_tgt[i] for i in idx])

    def _collate_val(self, idx):
        return collate([self.val_src[i] for i in idx], [self.val_tgt[i] for i in idx])

    def train_dataloader(self):
        world, rank = self.trainer.world_size, self.trainer.global_rank
        return loader(EpochBatches(self.make_epoch, self._collate_train, self.start, rank, world))

    def val_dataloader(self):
        if not self.val_src:
            return []
        lengths = np.array([max(len(a), len(b)) for a, b in zip(self.val_src, self.val_tgt)])
        return loader(FixedBatches(eval_batches(lengths, self.batch_size), self._collate_val))


def data_key(spec: Optional[str]) -> Optional[str]:
    """Named sets as they are; file paths made absolute (saved in the checkpoint)."""
    if spec is None or spec == "multi30k" or spec.startswith("multi30k:"):
        return spec
    if Path(spec).expanduser().is_file():
        return str(Path(spec).expanduser().resolve())
    if ":" in spec:
        a, b = spec.split(":", 1)
        return f"{Path(a).expanduser().resolve()}:{Path(b).expanduser().resolve()}"
    return spec


def load_train_val(d) -> Tuple[pd.Pairs, pd.Pairs]:
    """Training and validation pairs as the data config describes them."""
    train = pd.load_pairs(d.data, "train")
    if d.limit is not None:
        train = train.take(range(min(d.limit, len(train))))
    if d.val_data:
        val = pd.load_pairs(d.val_data, "val")
    elif d.data == "multi30k":
        val = pd.multi30k("val")
    else:
        n_val = max(1, int(round(len(train) * d.val_fraction)))
        if len(train) - n_val < 1:
            raise DataError(f"{d.data}: too few pairs ({len(train)}) to hold out a validation part")
        cut = len(train) - n_val
        val = train.take(range(cut, len(train)), f"{train.origin} (last {n_val})")
        train = train.take(range(cut))
    return train, val


def vocabs_from(data_cfg: Dict[str, Any]) -> Tuple[pd.SubwordVocab, pd.SubwordVocab]:
    src = pd.SubwordVocab.from_json(data_cfg["src_vocab"])
    tgt = src if data_cfg.get("shared_vocab") else pd.SubwordVocab.from_json(data_cfg["tgt_vocab"])
    return src, tgt


def prepare(cfg, saved_data: Optional[Dict[str, Any]], start: Optional[Tuple[int, int]]) -> Prepared:
    d = cfg.data
    train, val = load_train_val(d)
    if saved_data:
        src_vocab, tgt_vocab = vocabs_from(saved_data)
    else:
        src_vocab, tgt_vocab = pd.build_vocabs(train, d.vocab_size, d.shared_vocab, d.tokenizer)
    train_src, train_tgt = src_vocab.encode(train.src), tgt_vocab.encode(train.tgt)
    keep = [i for i, (a, b) in enumerate(zip(train_src, train_tgt)) if 1 <= len(a) <= d.max_len and 1 <= len(b) <= d.max_len]
    dropped = len(train_src) - len(keep)
    if not keep:
        raise DataError(f"{d.data}: every training pair is longer than --max-len {d.max_len} subword tokens")
    train_src, train_tgt = [train_src[i] for i in keep], [train_tgt[i] for i in keep]
    val_src, val_tgt = src_vocab.encode(val.src), tgt_vocab.encode(val.tgt)
    encoder, task = s2s.build(asdict(cfg.model), len(src_vocab), len(tgt_vocab), shared_vocab=d.shared_vocab)
    dm = PairDataModule(train_src, train_tgt, val_src, val_tgt, d.batch_size, cfg.run.seed, start=start or (0, 0))

    def final_eval(module) -> Dict[str, float]:
        n = len(val_src) if d.bleu_sentences is None else min(d.bleu_sentences, len(val_src))
        hyps = s2s.translate_ids(module.encoder, module.task, val_src[:n], beam=1)
        scores = s2s.bleu_chrf(tgt_vocab.decode([h.tokens for h in hyps]), val.tgt[:n])
        return {"val_bleu": scores["bleu"], "val_chrf": scores["chrf"]}

    data_config = {
        **asdict(d), "data": data_key(d.data), "val_data": data_key(d.val_data),
        "src_vocab": src_vocab.to_json(), "tgt_vocab": None if d.shared_vocab else tgt_vocab.to_json(),
        "vocab_sizes": [len(src_vocab), len(tgt_vocab)],
        "sizes": {"train": len(train_src), "val": len(val_src)},
    }
    ls, lt = np.array([len(a) for a in train_src]), np.array([len(b) for b in train_tgt])
    info = {"data": train.origin, "validation": val.origin, "train pairs": len(train_src),
            "validation pairs": len(val_src), f"dropped (> --max-len {d.max_len})": dropped,
            "vocabulary": f"{len(src_vocab)}" + ("" if d.shared_vocab else f" / {len(tgt_vocab)}") + f" {d.tokenizer}",
            "subwords per sentence (src/tgt mean)": f"{ls.mean():.1f}/{lt.mean():.1f}"}
    return Prepared(dm, encoder, task, data_config, final_eval, info)
