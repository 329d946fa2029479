"""Character-level language modelling: predict the next character (char-rnn, Karpathy 2015).

    e_t = E[c_t]                  (B, T, E)   embedding
    y_t, state = encoder(e)       (B, T, H)   any encoder under the contract
    p(c_{t+1} | c_{<=t}) = softmax(W y_t + b)

Loss is the mean cross-entropy in nats per character; bits per character = nats / ln 2.
Generation streams characters, carrying the encoder state: the prefix is never recomputed.
Recurrent encoders generate through the NumPy runtime (:mod:`rnnkit.reference.runtime`),
measured 1.5-2.7x faster than an ``nn.LSTMCell`` loop at batch 1 (docs/benchmarks.md); other encoders use their
torch ``step()``.
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import Encoder, build_encoder
from ..reference.runtime import numpy_stepper, resolve_engine

LN2 = math.log(2.0)
EVAL_STREAMS = 16  # contiguous streams a held-out text is scored in (state carried along each)


class CharLMTask(nn.Module):
    """Embedding in, next-character logits out."""

    name = "charlm"
    stream = True  # batches continue each other: the training loop may carry the state
    loss_in_bits = True  # validation also reports bits per character
    rate_unit = "tokens"  # training speed is reported in loss()'s "tokens" per second

    def __init__(self, vocab_size: int, embedding_dim: int, encoder_size: int,
                 dropout: float = 0.0, tie_weights: bool = False) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.input_size = embedding_dim
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder_size, vocab_size)
        if tie_weights:
            if encoder_size != embedding_dim:
                raise ValueError("weight tying needs embedding_dim == encoder output size")
            self.head.weight = self.embedding.weight

    def inputs(self, batch: Dict[str, Tensor]) -> Tuple[Tensor, Optional[Tensor]]:
        return self.embedding(batch["x"]), None  # (B, T) -> (B, T, E)

    def logits(self, y: Tensor) -> Tensor:
        return self.head(self.dropout(y))  # (B, T, H) -> (B, T, V)

    def loss(self, y: Tensor, batch: Dict[str, Tensor]) -> Tuple[Tensor, Dict[str, float]]:
        logits = self.logits(y)
        target = batch["y"]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))
        return loss, {"tokens": float(target.numel())}


def build(model_cfg: dict, vocab_size: int) -> Tuple[Encoder, CharLMTask]:
    """Encoder + task from a model config dict (CharLMModelConfig fields)."""
    encoder = build_encoder(model_cfg["encoder"], model_cfg["embedding_dim"], model_cfg["hidden_size"],
                            num_layers=model_cfg["num_layers"], dropout=model_cfg["dropout"])
    task = CharLMTask(vocab_size, model_cfg["embedding_dim"], encoder.output_size,
                      dropout=model_cfg["dropout"], tie_weights=model_cfg.get("tie_weights", False))
    return encoder, task


# ---------------------------------------------------------------------------------------
# scoring


@torch.no_grad()
def score_ids(encoder: Encoder, task: CharLMTask, ids: np.ndarray, n_streams: int = EVAL_STREAMS,
              seq_len: int = 256, max_windows: Optional[int] = None) -> Tuple[float, int]:
    """Mean next-character loss (nats) over ``ids``, carrying state along contiguous streams.

    Every id but the first ``n_streams`` (stream starts) and a remainder of < ``n_streams``
    is predicted exactly once. Returns ``(nats_per_char, n_predicted)``.
    """
    from ..reference.streams import StreamLayout

    was_training = encoder.training, task.training
    encoder.eval(), task.eval()
    n_streams = max(1, min(n_streams, (len(ids) - 1) // 2))
    layout = StreamLayout(len(ids), n_streams, seq_len, drop_last=False)
    if layout.stream_len < 1:
        raise ValueError("text too short to score (needs at least 2 characters)")
    device = next(task.parameters()).device
    state = None
    total, count = 0.0, 0
    for i in range(layout.n_windows if max_windows is None else min(max_windows, layout.n_windows)):
        x, y = layout.window(ids, i)
        batch = {"x": torch.from_numpy(x).to(device), "y": torch.from_numpy(y).to(device)}
        inp, lengths = task.inputs(batch)
        # a fixed-window encoder (Transformer, TCN) scores each window alone, as in training
        out, state = encoder(inp, state if encoder.carries_state else None, lengths)
        logits = task.logits(out)
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["y"].reshape(-1),
                                 reduction="sum").item()
        count += y.size
    encoder.train(was_training[0]), task.train(was_training[1])
    return total / max(count, 1), count


# ---------------------------------------------------------------------------------------
# generation


class TorchStepper:
    """Generation through the encoder's torch ``step()`` (any encoder; slower at batch 1)."""

    def __init__(self, encoder: Encoder, task: CharLMTask) -> None:
        self.encoder, self.task = encoder.eval(), task.eval()

    @torch.inference_mode()
    def step(self, token: int, state=None):
        x = self.task.embedding(torch.tensor([token]))  # (1, E)
        y, state = self.encoder.step(x, state)  # (1, H)
        return self.task.head(y)[0].double().numpy(), state


def make_stepper(weights: Dict[str, np.ndarray], model_cfg: dict, engine: str = "auto"):
    """The fastest correct batch-1 stepper for a checkpoint's weights.

    ``engine``: ``numpy`` (recurrent encoders only), ``torch`` (any encoder), or ``auto``
    (NumPy when the encoder is recurrent). Returns ``(stepper, engine_used)``.
    """
    engine = resolve_engine(model_cfg, engine)
    if engine == "numpy":
        return numpy_stepper(weights, model_cfg), "numpy"
    encoder, task = build(model_cfg, weights["task.head.bias"].shape[0])
    state = {k: torch.from_numpy(np.array(v)) for k, v in weights.items()}
    module = nn.ModuleDict({"encoder": encoder, "task": task})
    module.load_state_dict(state)
    return TorchStepper(encoder, task), "torch"
