"""Pre-norm Transformer encoder (Vaswani et al. 2017; pre-norm as in GPT-2 / Xiong et al. 2020).

    u_0 = W_in x + p(t)                                  (B, T, H)   p: sinusoidal or learned
    u   = u + dropout(Attn(LN(u)))                       multi-head self-attention
    u   = u + dropout(W_2 GELU(W_1 LN(u)))               MLP, 4H wide
    y   = LN(u)                                          after the last block

Causal (the default) for language models and forecasting: position t attends to positions
<= t. ``bidirectional=True`` attends to the whole (unpadded part of the) row, for
classification and CTC; ``output_size`` stays ``H`` either way. Heads: ``H // 64`` (at least
one, a divisor of H) unless ``num_heads`` is given.

State (causal only) is the key/value cache ``(k, v, valid)``: ``k`` and ``v`` of shape
(L, B, heads, S, H/heads) for the ``S`` positions seen so far and ``valid`` (1, B, S), False
where a row had padding. ``forward(x, state)`` appends to it (queries attend to the cache
plus the causal part of ``x``), so ``step()`` is ``forward`` of one column and two chunks
equal one sequence. The cache grows with every position: O(S) memory and time per step, the
price of attention, where an RNN's state is constant. Training never carries it across
batches (``carries_state = False``): the model sees a fixed window.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Encoder, check_input, check_step_input, length_mask
from .recurrent import _check_sizes


def sinusoidal(positions: Tensor, dim: int, dtype) -> Tensor:
    """Vaswani's fixed encoding: positions (...,) -> (..., dim) of sin/cos at geometric rates."""
    half = (dim + 1) // 2
    freq = torch.exp(torch.arange(half, dtype=torch.float64, device=positions.device)
                     * (-math.log(10000.0) / max(half, 1)))
    angle = positions.to(torch.float64)[..., None] * freq  # (..., half)
    pe = torch.cat([torch.sin(angle), torch.cos(angle)], -1)[..., :dim]
    return pe.to(dtype)


def default_heads(hidden_size: int) -> int:
    n = max(1, hidden_size // 64)
    while hidden_size % n:
        n -= 1
    return n


class _Block(nn.Module):
    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size)
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.out = nn.Linear(hidden_size, hidden_size)
        self.norm2 = nn.LayerNorm(hidden_size)
        self.fc1 = nn.Linear(hidden_size, mlp_ratio * hidden_size)
        self.fc2 = nn.Linear(mlp_ratio * hidden_size, hidden_size)


class Transformer(Encoder):
    """Causal or bidirectional pre-norm Transformer under the encoder contract."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 2, dropout: float = 0.0,
                 bidirectional: bool = False, num_heads: Optional[int] = None,
                 positions: str = "sinusoidal", max_len: int = 2048, mlp_ratio: int = 4) -> None:
        _check_sizes(input_size, hidden_size, num_layers, dropout)
        num_heads = num_heads or default_heads(hidden_size)
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_heads {num_heads}")
        if positions not in ("sinusoidal", "learned"):
            raise ValueError(f"positions must be sinusoidal or learned, got {positions!r}")
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.dropout, self.bidirectional, self.num_heads = float(dropout), bidirectional, num_heads
        self.positions, self.max_len = positions, max_len
        self.output_size = hidden_size
        self.carries_state = False
        self.in_proj = nn.Linear(input_size, hidden_size)
        self.pos_embedding = nn.Embedding(max_len, hidden_size) if positions == "learned" else None
        self.blocks = nn.ModuleList(_Block(hidden_size, num_heads, mlp_ratio) for _ in range(num_layers))
        self.norm = nn.LayerNorm(hidden_size)
        if self.pos_embedding is not None:
            nn.init.normal_(self.pos_embedding.weight, std=0.02)

    def _position_encoding(self, pos: Tensor, dtype) -> Tensor:
        """pos (B, T) -> (B, T, H)."""
        if self.pos_embedding is None:
            return sinusoidal(pos, self.hidden_size, dtype)
        if int(pos.max()) >= self.max_len:
            raise ValueError(f"position {int(pos.max())} is beyond max_len={self.max_len} of the "
                             f"learned position embedding")
        return self.pos_embedding(pos).to(dtype)

    def _check_state(self, state, batch: int) -> Tuple[Tensor, Tensor, Tensor]:
        ok = isinstance(state, (tuple, list)) and len(state) == 3 and all(isinstance(s, Tensor) for s in state)
        if ok:
            k, v, valid = state
            L, nh, hd = self.num_layers, self.num_heads, self.hidden_size // self.num_heads
            ok = (k.dim() == 5 and tuple(k.shape[:3]) == (L, batch, nh) and k.shape[4] == hd
                  and v.shape == k.shape and tuple(valid.shape) == (1, batch, k.shape[3])
                  and valid.dtype == torch.bool)
        if not ok:
            raise TypeError("transformer state must be the key/value cache (k, v, valid): k, v of shape "
                            "(layers, B, heads, S, head_dim), valid (1, B, S) bool")
        return tuple(state)

    def forward(self, x: Tensor, state=None, lengths: Optional[Tensor] = None):
        check_input(x, self.input_size, lengths)
        B, T, _ = x.shape
        nh, hd = self.num_heads, self.hidden_size // self.num_heads
        if state is not None:
            if self.bidirectional:
                raise ValueError("a bidirectional Transformer reads the future: it takes no state")
            k_past, v_past, valid_past = self._check_state(state, B)
            S = k_past.shape[3]
            start = valid_past[0].sum(-1)  # (B,) positions already seen per row
        else:
            S, start = 0, torch.zeros(B, dtype=torch.long, device=x.device)
        mask = None if lengths is None else length_mask(lengths.to(x.device), T)  # (B, T)
        if mask is not None:  # a padded value is multiplied by a 0 attention weight: keep it finite
            x = x.masked_fill(~mask[:, :, None], 0.0)
        t = torch.arange(T, device=x.device)
        u = self.in_proj(x) + self._position_encoding(start[:, None] + t[None, :], x.dtype)  # (B, T, H)
        u = F.dropout(u, self.dropout, self.training)

        # which keys each query may read: (B, 1, T, S + T), or None for the plain causal case
        attn_mask, is_causal = None, False
        if S == 0 and mask is None:
            is_causal = not self.bidirectional
        elif T == 1 and mask is None and bool(valid_past.all()):
            pass  # one new query that may read every cached key: no mask (the generation step)
        else:
            new_ok = torch.ones(B, T, T, dtype=torch.bool, device=x.device)
            if not self.bidirectional:
                new_ok = new_ok & (t[None, None, :] <= t[None, :, None])  # key <= query
            if mask is not None:
                new_ok = new_ok & mask[:, None, :]
            parts = [new_ok]
            if S:
                parts.insert(0, valid_past[0][:, None, :].expand(B, T, S))
            attn_mask = torch.cat(parts, -1)[:, None]  # (B, 1, T, S+T)

        ks, vs = [], []
        for i, blk in enumerate(self.blocks):
            q, k, v = blk.qkv(blk.norm1(u)).view(B, T, 3, nh, hd).permute(2, 0, 3, 1, 4)  # (B, nh, T, hd)
            if S:
                k = torch.cat([k_past[i], k], 2)  # (B, nh, S+T, hd)
                v = torch.cat([v_past[i], v], 2)
            ks.append(k)
            vs.append(v)
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)
            a = a.transpose(1, 2).reshape(B, T, self.hidden_size)  # (B, T, H)
            u = u + F.dropout(blk.out(a), self.dropout, self.training)
            m = blk.fc2(F.gelu(blk.fc1(blk.norm2(u))))
            u = u + F.dropout(m, self.dropout, self.training)
        y = self.norm(u)
        if mask is not None:
            y = y.masked_fill(~mask[:, :, None], 0.0)
        if self.bidirectional:
            return y, None
        valid_new = mask if mask is not None else torch.ones(B, T, dtype=torch.bool, device=x.device)
        valid = valid_new if not S else torch.cat([valid_past[0], valid_new], 1)
        return y, (torch.stack(ks), torch.stack(vs), valid[None])

    def step(self, x_t: Tensor, state=None):
        """One position: x_t (B, C) -> y_t (B, H); appends one key/value column to the cache."""
        check_step_input(self, x_t, causal=not self.bidirectional)
        y, state = self.forward(x_t[:, None, :], state)
        return y[:, 0], state

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"heads={self.num_heads}, positions={self.positions!r}, dropout={self.dropout}, "
                f"bidirectional={self.bidirectional}")
