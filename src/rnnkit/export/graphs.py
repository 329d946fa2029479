"""The torch modules that become ONNX graphs: one wrapper per task (and role), NumPy-shaped I/O.

Each wrapper runs exactly the computation the task's torch inference path runs (the
encoder's masked ``outputs()`` route for variable lengths, never ``pack_padded_sequence``),
with plain tensors in and out, so ``torch.onnx.export`` can trace it with dynamic batch and
time axes:

    charlm      model: ids (B, T) int64, h [, c] (L, B, H) -> logits (B, T, V), h [, c]  (scoring)
                step: token (B,) int64, h [, c] (L, H, B) -> logits (V, B), h [, c]  (generation;
                column layout, see CharLMStepGraph)
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


class CharLMStepGraph(nn.Module):
    """One generation step in *column* layout: token (B,), state (L, H, B) -> logits (V, B),
    state (L, H, B). Every weight is the left factor of a product with columns (``W h``, the
    layout onnxruntime streams a weight fastest in at batch 1: 8 MB in 0.78 ms, as NumPy; the
    row layout ``x W^T`` of ``nn.Linear``, 1.1 ms), and no transpose is left for onnxruntime's
    graph rewrites to turn back into the slow layout. Layer 0's input projection is a table
    lookup (every vocabulary entry's, as the NumPy runtime), each later layer one
    ``[W_ih | W_hh]`` product (GRU keeps ``W_hn h + b_hn`` apart for its reset gate). Same
    cell equations as rnnkit.layers (gates i, f, g, o and r, z, n); the self-check compares
    it with the encoder's own ``step``. The state layout is the step graph's own: a stepper
    starts it from zeros and never exchanges it with the sequence graph."""

    def __init__(self, encoder, task) -> None:
        super().__init__()
        self.kind = "relu" if getattr(encoder, "nonlinearity", "tanh") == "relu" else encoder.spec.name
        self.layers, self.H = encoder.num_layers, encoder.hidden_size
        p = lambda t: nn.Parameter(t.contiguous())  # noqa: E731
        with torch.no_grad():
            w = {k: v.detach().clone() for k, v in encoder.state_dict().items()}
            table = w["weight_ih_l0"] @ task.embedding.weight.T + w["bias_ih_l0"][:, None]  # (G, V)
            self.fused = self.kind != "gru"
            if self.fused:  # one product per layer: [W_ih | W_hh] [x; h] + both biases
                table = table + w["bias_hh_l0"][:, None]
                self.w_hh0 = p(w["weight_hh_l0"])
                self.w_cat = nn.ParameterList([p(torch.cat([w[f"weight_ih_l{k}"], w[f"weight_hh_l{k}"]], 1))
                                               for k in range(1, self.layers)])
                self.b_cat = nn.ParameterList([p((w[f"bias_ih_l{k}"] + w[f"bias_hh_l{k}"])[:, None])
                                               for k in range(1, self.layers)])
            else:
                self.w_ih = nn.ParameterList([p(w[f"weight_ih_l{k}"]) for k in range(1, self.layers)])
                self.b_ih = nn.ParameterList([p(w[f"bias_ih_l{k}"][:, None]) for k in range(1, self.layers)])
                self.w_hh = nn.ParameterList([p(w[f"weight_hh_l{k}"]) for k in range(self.layers)])
                self.b_hh = nn.ParameterList([p(w[f"bias_hh_l{k}"][:, None]) for k in range(self.layers)])
            self.table = p(table)
            self.head_w = p(task.head.weight.detach())  # (V, H)
            self.head_b = p(task.head.bias.detach()[:, None])  # (V, 1)

    def forward(self, token: Tensor, *state: Tensor):
        H, new = self.H, []
        x = token
        for k in range(self.layers):
            h = state[0][k]  # (H, B)
            if not self.fused:
                gi = self.table[:, token] if k == 0 else torch.matmul(self.w_ih[k - 1], x) + self.b_ih[k - 1]  # (G, B)
                gh = torch.matmul(self.w_hh[k], h) + self.b_hh[k]
            elif k == 0:
                g = self.table[:, token] + torch.matmul(self.w_hh0, h)  # (G, B)
            else:
                g = torch.matmul(self.w_cat[k - 1], torch.cat([x, h], 0)) + self.b_cat[k - 1]
            if self.kind == "lstm":
                i, f, gg, o = torch.split(g, H, dim=0)
                c = torch.sigmoid(f) * state[1][k] + torch.sigmoid(i) * torch.tanh(gg)
                x = torch.sigmoid(o) * torch.tanh(c)
                new.append((x, c))
            elif self.kind == "gru":
                r = torch.sigmoid(gi[:H] + gh[:H])
                z = torch.sigmoid(gi[H:2 * H] + gh[H:2 * H])
                n = torch.tanh(gi[2 * H:] + r * gh[2 * H:])
                x = (1 - z) * n + z * h
                new.append((x,))
            else:
                x = torch.relu(g) if self.kind == "relu" else torch.tanh(g)
                new.append((x,))
        logits = torch.matmul(self.head_w, x) + self.head_b  # (V, B)
        return (logits, *[torch.stack([p[i] for p in new]) for i in range(len(new[0]))])


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
