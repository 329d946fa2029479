"""The torch modules that become ONNX graphs: one wrapper per task (and role), NumPy-shaped I/O.

Each wrapper runs exactly the computation the task's torch inference path runs (the
encoder's masked ``outputs()`` route for variable lengths, never ``pack_padded_sequence``),
with plain tensors in and out, so ``torch.onnx.export`` can trace it with dynamic batch and
time axes:

    charlm      ids (B, T) int64, h [, c] (L, B, H)   -> logits (B, T, V), h [, c]
                (T = 1 is the generation step; the state is carried by the caller)
    sentiment   ids (B, T) int64, lengths (B,) int64  -> logits (B, C)
    forecast    x (B, L, C)                           -> out: the head's raw outputs with the
                skip added (B, H, K, per); sigma already softplus'ed for a Gaussian head;
                for an event model the probability (B,)
    asr         feats (B, T, M), feat_lengths (B,)    -> log_probs (B, T', U), out_lengths (B,)
    seq2seq     encoder: src (B, S) int64, src_len (B,) -> memory (B, S, He), keys (B, S, A),
                         h0 [, c0] (L, B, Hd)
                decoder step: tokens (N,), h [, c], [prev_a (N, A)], memory, keys, src_len
                         -> logits (N, V), h [, c], a (N, A), weights (N, S)

:data:`rnnkit.export.layout.IO` lists every graph's input and output names; the runtime
checks a loaded graph against it, so a graph of another task is refused by name.
"""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layout import IO, io_names  # noqa: F401  (the names every wrapper below produces)

def _state(parts: Tuple[Tensor, ...]):
    return parts[0] if len(parts) == 1 else tuple(parts)


def _parts(state) -> Tuple[Tensor, ...]:
    return (state,) if isinstance(state, Tensor) else tuple(state)


class CharLMGraph(nn.Module):
    """A stretch of characters with the recurrent state carried in and out."""

    def __init__(self, encoder, task) -> None:
        super().__init__()
        self.encoder, self.task = encoder, task

    def forward(self, ids: Tensor, *state: Tensor):
        y, new = self.encoder(self.task.embedding(ids), _state(state))  # (B, T, H)
        return (self.task.head(y), *_parts(new))  # (B, T, V)


class SentimentGraph(nn.Module):
    def __init__(self, encoder, task) -> None:
        super().__init__()
        self.encoder, self.task = encoder, task

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        y = self.encoder.outputs(self.task.embedding(ids), lengths)  # (B, T, D*H)
        return self.task.logits(y, lengths)  # (B, C)


class ForecastGraph(nn.Module):
    def __init__(self, encoder, task) -> None:
        super().__init__()
        self.encoder, self.task = encoder, task

    def forward(self, x: Tensor) -> Tensor:
        y = self.encoder.outputs(x)  # (B, L, E)
        out = self.task.raw(y, x)
        if self.task.kind == "event":
            return torch.sigmoid(out)  # (B,)
        if self.task.kind == "gaussian":
            return torch.stack([out[..., 0], F.softplus(out[..., 1]) + 1e-3], -1)  # (B, H, K, 2)
        return out  # (B, H, K, per)


class AsrGraph(nn.Module):
    def __init__(self, encoder, task) -> None:
        super().__init__()
        self.encoder, self.task = encoder, task

    def forward(self, feats: Tensor, feat_lengths: Tensor):
        x, lengths = self.task.frontend(feats, feat_lengths)  # (B, T', C F')
        y = self.encoder.outputs(x, lengths)
        return self.task.log_probs(y), lengths  # (B, T', U)


class Seq2SeqEncoderGraph(nn.Module):
    def __init__(self, encoder, task) -> None:
        super().__init__()
        self.encoder, self.task = encoder, task

    def forward(self, src: Tensor, src_len: Tensor):
        y = self.encoder.outputs(self.task.src_embedding(src), src_len)  # (B, S, He)
        mem = self.task.memory(y, src_len)
        return (mem.memory, mem.keys, *_parts(self.task.initial_state(mem)))


class Seq2SeqDecoderGraph(nn.Module):
    """One decoder step with attention over the memory (the task's own ``step``)."""

    def __init__(self, task) -> None:
        super().__init__()
        self.task = task

    def forward(self, tokens: Tensor, *rest: Tensor):
        from ..tasks.seq2seq import Memory

        n = self.task.n_state
        state, rest = _state(rest[:n]), rest[n:]
        prev_a = None
        if self.task.input_feeding:
            prev_a, rest = rest[0], rest[1:]
        memory, keys, src_len = rest
        mask = torch.arange(memory.shape[1], device=memory.device)[None, :] < src_len[:, None]  # (N, S)
        logits, new, a, w = self.task.step(tokens, state, prev_a, Memory(memory, keys, mask))
        return (logits, *_parts(new), a, w)
