"""Text classification (sentiment): embedding -> encoder -> masked pooling -> classifier.

    e_t = dropout(E[w_t])                  (B, T, E)
    y = encoder.outputs(e, lengths)        (B, T, D*H)  D = 2 when bidirectional
    s = pool(y, lengths)                   (B, D*H)     padding never enters the pool
    p(c | text) = softmax(W dropout(s) + b)

Pooling over the true time steps only:

* ``last``: the output at the last real token; for a bidirectional encoder the forward
  half at ``t = len - 1`` and the backward half at ``t = 0`` (each direction's final state);
* ``mean`` / ``max``: over ``t < len``;
* ``attention``: ``a = softmax_t(v . tanh(W y_t))`` with padded steps masked out, ``s = sum_t a_t y_t``
  (Yang et al. 2016, "Hierarchical attention networks", word level).

Loss: mean cross-entropy per example. The task never asks which encoder it holds.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.sentiment import eval_batches  # noqa: F401  (torch-free: the ONNX runtime batches with it too)
from .sentiment_metrics import metrics  # noqa: F401  (torch-free home, re-exported)
from ..layers import Encoder, build_encoder

POOLINGS = ("last", "mean", "max", "attention")


def length_mask(lengths: Tensor, T: int) -> Tensor:
    """(B,) lengths -> (B, T) bool, True on real steps."""
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


class SentimentTask(nn.Module):
    """Token ids in, class logits out (one prediction per text)."""

    name = "sentiment"
    stream = False  # independent examples: no state carried between batches
    rate_unit = "texts"  # training speed is reported in loss()'s "texts" per second

    def __init__(self, vocab_size: int, embedding_dim: int, encoder_size: int, n_classes: int,
                 pooling: str = "max", bidirectional: bool = False, dropout: float = 0.0,
                 embedding_dropout: float = 0.0) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.input_size = embedding_dim
        self.pooling, self.bidirectional = pooling, bidirectional
        self.n_classes = n_classes
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.dropout = nn.Dropout(dropout)
        if pooling == "attention":
            self.attention = nn.Sequential(nn.Linear(encoder_size, encoder_size), nn.Tanh(),
                                           nn.Linear(encoder_size, 1, bias=False))
        self.head = nn.Linear(encoder_size, n_classes)

    @torch.no_grad()
    def load_vectors(self, vectors: np.ndarray, found: np.ndarray) -> None:
        """Initialise the embedding from pretrained word vectors (Kim 2014).

        ``vectors``: ``(V, E)``, the rows to copy where ``found`` (``(V,)`` bool). Rows not
        found keep their random init, rescaled to the found vectors' standard deviation:
        ``nn.Embedding`` draws N(0, 1), several times the spread of typical word2vec/GloVe
        rows, so unscaled random rows would dominate the first layer. Padding stays zero.
        """
        weight = self.embedding.weight  # (V, E)
        if tuple(vectors.shape) != tuple(weight.shape) or found.shape != (weight.shape[0],):
            raise ValueError(f"vectors {vectors.shape} / found {found.shape} do not fit the embedding {tuple(weight.shape)}")
        hit = torch.tensor(np.asarray(found, dtype=bool), device=weight.device)  # a copy: the caller's array stays
        hit[0] = False  # padding_idx: never a vector
        miss = ~hit
        miss[0] = False
        if not bool(hit.any()):
            raise ValueError("no pretrained vector to copy")
        pretrained = torch.from_numpy(np.asarray(vectors, dtype=np.float32)).to(weight)
        weight[hit] = pretrained[hit]
        target = float(pretrained[hit].std(correction=0))
        current = float(weight[miss].std(correction=0)) if bool(miss.any()) else 0.0
        if current > 0:
            weight[miss] *= target / current

    def inputs(self, batch: Dict[str, Tensor]) -> Tuple[Tensor, Optional[Tensor]]:
        return self.embedding_dropout(self.embedding(batch["x"])), batch["lengths"]  # (B, T) -> (B, T, E)

    def pool(self, y: Tensor, lengths: Tensor) -> Tensor:
        B, T, H = y.shape
        lengths = lengths.to(y.device)
        mask = length_mask(lengths, T)  # (B, T)
        if self.pooling == "mean":
            return (y * mask[..., None]).sum(1) / lengths[:, None].to(y.dtype)  # (B, H)
        if self.pooling == "max":
            return y.masked_fill(~mask[..., None], float("-inf")).max(1).values  # (B, H)
        if self.pooling == "attention":
            scores = self.attention(y).squeeze(-1).masked_fill(~mask, float("-inf"))  # (B, T)
            weights = torch.softmax(scores, dim=1)
            return torch.einsum("bt,bth->bh", weights, y)  # (B, H)
        rows = torch.arange(B, device=y.device)
        last = y[rows, lengths - 1]  # (B, H)
        if not self.bidirectional:
            return last
        half = H // 2
        return torch.cat([last[:, :half], y[:, 0, half:]], dim=-1)  # forward end, backward end

    def logits(self, y: Tensor, lengths: Tensor) -> Tensor:
        return self.head(self.dropout(self.pool(y, lengths)))  # (B, C)

    def loss(self, y: Tensor, batch: Dict[str, Tensor]) -> Tuple[Tensor, Dict[str, float]]:
        logits = self.logits(y, batch["lengths"])
        loss = F.cross_entropy(logits, batch["y"])
        correct = (logits.argmax(-1) == batch["y"]).sum().item()
        # "tokens" weighs the logged loss: here it counts examples
        n = float(batch["y"].numel())
        return loss, {"tokens": n, "texts": n, "correct": float(correct)}


def build(model_cfg: dict, vocab_size: int, n_classes: int) -> Tuple[Encoder, SentimentTask]:
    """Encoder + task from a model config dict (SentimentModelConfig fields)."""
    bidir = bool(model_cfg.get("bidirectional", False))
    encoder = build_encoder(model_cfg["encoder"], model_cfg["embedding_dim"], model_cfg["hidden_size"],
                            num_layers=model_cfg["num_layers"], dropout=model_cfg["dropout"], bidirectional=bidir)
    # outputs are [forward | backward] halves only for two-direction recurrent encoders; a
    # "bidirectional" TCN or Transformer is non-causal with one output per step
    two_halves = bidir and getattr(encoder, "num_directions", 1) == 2
    task = SentimentTask(vocab_size, model_cfg["embedding_dim"], encoder.output_size, n_classes,
                         pooling=model_cfg.get("pooling", "max"), bidirectional=two_halves,
                         dropout=model_cfg["dropout"], embedding_dropout=model_cfg.get("embedding_dropout", 0.0))
    return encoder, task


def collate(ids: Sequence[np.ndarray], labels: Optional[np.ndarray] = None) -> Dict[str, Tensor]:
    """Pad to the longest text of the batch (id 0); ``lengths`` are the true lengths."""
    lengths = np.array([len(a) for a in ids], dtype=np.int64)
    x = np.zeros((len(ids), int(lengths.max())), dtype=np.int64)
    for i, a in enumerate(ids):
        x[i, :len(a)] = a
    batch = {"x": torch.from_numpy(x), "lengths": torch.from_numpy(lengths)}
    if labels is not None:
        batch["y"] = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    return batch


@torch.no_grad()
def predict_proba(encoder: Encoder, task: SentimentTask, ids: Sequence[np.ndarray]) -> np.ndarray:
    """Class probabilities ``(N, C)`` in the order of ``ids`` (batched by length)."""
    was = encoder.training, task.training
    encoder.eval(), task.eval()
    device = next(task.parameters()).device
    probs = np.zeros((len(ids), task.n_classes), dtype=np.float64)
    lengths = np.array([len(a) for a in ids])
    for b in eval_batches(lengths):
        batch = collate([ids[i] for i in b])
        x, lens = task.inputs({k: v.to(device) for k, v in batch.items()})
        y = encoder.outputs(x, lens)
        probs[b] = torch.softmax(task.logits(y, lens).double(), -1).cpu().numpy()
    encoder.train(was[0]), task.train(was[1])
    return probs
