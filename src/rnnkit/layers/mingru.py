"""minGRU and minLSTM (Feng, Tung, Ahmed, Bengio & Hajimirsadeghi 2024, "Were RNNs All We Needed?").

Their gates read only the input, so the recurrence is linear in h and a whole sequence can
be computed at once (see :mod:`rnnkit.layers.scan`), while generation is still an O(1)-memory
RNN step::

    minGRU:   z_t = σ(W_z x_t + b_z)                              (B, T, H)
    minLSTM:  f_t = σ(W_f x_t + b_f),  i_t = σ(W_i x_t + b_i)
              z_t = i_t / (f_t + i_t) = σ(softplus(-k_f) - softplus(-k_i))   (normalised input gate)
    both:     h̃_t = g(W_h x_t + b_h),  g(v) = v + 1/2 if v >= 0 else σ(v)   (= max(σ(v), v + 1/2))
              h_t = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t

``g`` keeps h̃ (and so h) positive, which the paper's log-space scan needs; the same model
runs through every scan route (``method``):

* ``fused`` (default): gates, ``g`` and the scan in one autograd node with a hand-written
  backward; the scan is one ``lerp`` per step (as :func:`~rnnkit.layers.scan.lerp_scan`),
  the fewest bytes moved of all routes, which is what counts on a memory-bound CPU;
* ``chunked``: :func:`~rnnkit.layers.scan.linear_scan`, the chunked parallel scan;
* ``log``: the paper's log-space scan (``logcumsumexp``), computed from log-gates directly;
* ``loop``: the plain autograd step loop (the sequential twin).

Stacking: layer 0 maps the input to ``H`` (per direction); every later layer is a pre-norm
residual block ``y = y + dropout(cell(LayerNorm(y)))``; a stack of two or more layers ends
with a LayerNorm. The state is ``h`` of shape (num_layers * num_directions, B, H), exactly
like ``nn.GRU``'s, so truncated BPTT carries it (``carries_state = True``). A bidirectional
layer runs a second cell over each row reversed within its own length.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Encoder, check_input, check_step_input, length_mask
from .recurrent import _check_sizes, _gather_time
from .scan import linear_scan, log_scan

METHODS = ("fused", "chunked", "log", "loop")


class _G(torch.autograd.Function):
    """g(v) = max(σ(v), v + 1/2) with a lean backward (g' = 1 for v >= 0, σ'(v) otherwise)."""

    @staticmethod
    def forward(ctx, v: Tensor) -> Tensor:
        ctx.save_for_backward(v)
        return torch.maximum(torch.sigmoid(v), v + 0.5)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (v,) = ctx.saved_tensors
        s = torch.sigmoid(v)
        return torch.where(v >= 0, grad, torch.ops.aten.sigmoid_backward(grad, s))


def softplus(v: Tensor) -> Tensor:
    """log(1 + e^v) without overflow and without F.softplus's cut-off (it returns v itself for
    v > 20, an error of e^-20 ~ 2e-9 that float64 would see)."""
    return F.relu(v) + torch.log1p(torch.exp(-v.abs()))


class _FusedMinCell(torch.autograd.Function):
    """projection p (B, T, n*H) -> h (B, T, H): gates, g and the scan in one autograd node.

    Forward keeps p, z, σ(v), g and h; backward runs the reverse scan and writes the gate
    gradients straight into one (B, T, n*H) tensor for the projection's matmul, so no
    per-gate autograd glue (slice backward, zero fills, extra adds) touches memory.
    """

    @staticmethod
    def forward(ctx, p: Tensor, h0: Optional[Tensor], mask: Optional[Tensor], kind: str):
        n = 2 if kind == "mingru" else 3
        H = p.shape[-1] // n
        if kind == "mingru":
            z = torch.sigmoid(p[..., :H])
        else:
            z = torch.sigmoid(softplus(-p[..., :H]) - softplus(-p[..., H:2 * H]))
        if mask is not None:
            z.mul_(mask[:, :, None].to(z.dtype))  # z = 0: padding leaves h unchanged
        v = p[..., (n - 1) * H:]
        s = torch.sigmoid(v)
        g = torch.maximum(s, v + 0.5)
        h = torch.empty_like(g)
        prev = torch.zeros_like(g[:, 0]) if h0 is None else h0
        zs, gs, hs = z.unbind(1), g.unbind(1), h.unbind(1)
        for t in range(g.shape[1]):
            torch.lerp(prev, gs[t], zs[t], out=hs[t])
            prev = hs[t]
        ctx.save_for_backward(p, z, s, g, h, h0)
        ctx.kind, ctx.n, ctx.H = kind, n, H
        return h

    @staticmethod
    def backward(ctx, grad: Tensor):
        p, z, s, g, h, h0 = ctx.saved_tensors
        n, H = ctx.n, ctx.H
        grad = grad.contiguous()
        a_next = torch.empty_like(z)  # a_{t+1} = 1 - z_{t+1}; 0 after the last step
        torch.sub(1.0, z[:, 1:], out=a_next[:, :-1])
        a_next[:, -1] = 0
        dh = torch.empty_like(grad)  # total dL/dh_t = grad_t + a_{t+1} dL/dh_{t+1}
        ds, gs, As = dh.unbind(1), grad.unbind(1), a_next.unbind(1)
        ds[-1].copy_(gs[-1])
        for t in range(grad.shape[1] - 2, -1, -1):
            torch.addcmul(gs[t], As[t], ds[t + 1], out=ds[t])
        dp = torch.empty_like(p)
        v = p[..., (n - 1) * H:]
        dg = dh * z
        torch.where(v >= 0, dg, torch.ops.aten.sigmoid_backward(dg, s), out=dp[..., (n - 1) * H:])
        dz = dg  # reuse the buffer: dL/dz_t = dh_t (g_t - h_{t-1})
        torch.sub(g[:, 1:], h[:, :-1], out=dz[:, 1:])
        torch.sub(g[:, 0], 0 if h0 is None else h0, out=dz[:, 0])
        dz.mul_(dh)
        if ctx.kind == "mingru":
            torch.ops.aten.sigmoid_backward.grad_input(dz, z, grad_input=dp[..., :H])
        else:  # k = softplus(-k_f) - softplus(-k_i): dk/dk_f = -σ(-k_f), dk/dk_i = σ(-k_i)
            dk = torch.ops.aten.sigmoid_backward(dz, z)  # zero on padding (z = 0 there)
            torch.mul(dk, torch.sigmoid(-p[..., :H]), out=dp[..., :H]).neg_()
            torch.mul(dk, torch.sigmoid(-p[..., H:2 * H]), out=dp[..., H:2 * H])
        dh0 = None
        if h0 is not None and ctx.needs_input_grad[1]:
            dh0 = (1 - z[:, 0]) * dh[:, 0]
        return dp, dh0, None, None


def g_act(v: Tensor) -> Tensor:
    """The positive candidate activation g (continuous at 0: both branches give 1/2)."""
    return _G.apply(v)


def log_g(v: Tensor) -> Tensor:
    """log g(v), computed without forming g for v < 0 (log σ(v) = -softplus(-v))."""
    return torch.where(v >= 0, torch.log(F.relu(v) + 0.5), -softplus(-v))


class _MinCell(nn.Module):
    """One direction of one layer: the input projection and the gate equations."""

    def __init__(self, in_size: int, hidden_size: int, kind: str) -> None:
        super().__init__()
        self.kind, self.hidden_size = kind, hidden_size
        n = 2 if kind == "mingru" else 3  # gate blocks: (z, h̃) or (f, i, h̃)
        self.proj = nn.Linear(in_size, n * hidden_size)

    def gate_logit(self, p: Tensor) -> Tuple[Tensor, Tensor]:
        """Projection (..., n*H) -> (logit of z, pre-activation of h̃)."""
        H = self.hidden_size
        if self.kind == "mingru":
            return p[..., :H], p[..., H:]
        k_f, k_i, v = p[..., :H], p[..., H:2 * H], p[..., 2 * H:]
        return softplus(-k_f) - softplus(-k_i), v  # log i - log f

    def run(self, x: Tensor, h0: Optional[Tensor], mask: Optional[Tensor], method: str) -> Tensor:
        """x (B, T, C) -> h (B, T, H); ``mask`` (B, T) freezes h on padding (z = 0)."""
        p = self.proj(x)  # (B, T, n*H)
        if method == "fused":
            return _FusedMinCell.apply(p, h0, mask, self.kind)
        k, v = self.gate_logit(p)  # (B, T, H) each
        if method == "log":
            log_z, log_1mz = -softplus(-k), -softplus(k)
            if mask is not None:
                pad = ~mask[:, :, None]
                log_z = log_z.masked_fill(pad, float("-inf"))
                log_1mz = log_1mz.masked_fill(pad, 0.0)
            log_h0 = None if h0 is None else torch.log(h0)
            return torch.exp(log_scan(log_1mz, log_z + log_g(v), log_h0))
        z, g = torch.sigmoid(k), g_act(v)
        if mask is not None:
            z = z * mask[:, :, None].to(z.dtype)
        if method == "chunked":
            return linear_scan(1 - z, z * g, h0)
        h = torch.zeros_like(g[:, 0]) if h0 is None else h0
        out = []
        for z_t, g_t in zip(z.unbind(1), g.unbind(1)):  # the sequential twin
            h = torch.lerp(h, g_t, z_t)
            out.append(h)
        return torch.stack(out, 1)

    def step(self, x_t: Tensor, h: Tensor) -> Tensor:
        k, v = self.gate_logit(self.proj(x_t))  # (B, H)
        return torch.lerp(h, g_act(v), torch.sigmoid(k))


class _MinLayer(nn.Module):
    def __init__(self, in_size: int, hidden_size: int, kind: str, bidirectional: bool,
                 residual: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(in_size) if residual else None
        self.cell = _MinCell(in_size, hidden_size, kind)
        self.cell_reverse = _MinCell(in_size, hidden_size, kind) if bidirectional else None


class MinRecurrent(Encoder):
    """A stack of minGRU or minLSTM layers under the encoder contract."""

    kind = "mingru"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0,
                 bidirectional: bool = False, method: str = "fused") -> None:
        _check_sizes(input_size, hidden_size, num_layers, dropout)
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bidirectional, self.method = bidirectional, method
        self.num_directions = 2 if bidirectional else 1
        self.output_size = hidden_size * self.num_directions
        self.carries_state = True
        self.dropout = float(dropout if num_layers > 1 else 0.0)
        self.layers = nn.ModuleList(
            _MinLayer(input_size if k == 0 else self.output_size, hidden_size, self.kind,
                      bidirectional, residual=k > 0)
            for k in range(num_layers))
        self.norm = nn.LayerNorm(self.output_size) if num_layers > 1 else None

    def initial_state(self, batch_size: int, device=None, dtype=None) -> Tensor:
        w = self.layers[0].cell.proj.weight
        return w.new_zeros((self.num_layers * self.num_directions, batch_size, self.hidden_size),
                           device=device, dtype=dtype)

    def _check_state(self, state: Tensor, batch: int) -> None:
        shape = (self.num_layers * self.num_directions, batch, self.hidden_size)
        if not isinstance(state, Tensor) or tuple(state.shape) != shape:
            got = tuple(state.shape) if isinstance(state, Tensor) else type(state).__name__
            raise TypeError(f"{self.kind} state must be a tensor h of shape {shape}, got {got}")

    def forward(self, x: Tensor, state: Optional[Tensor] = None, lengths: Optional[Tensor] = None):
        check_input(x, self.input_size, lengths)
        B, T, _ = x.shape
        if state is not None:
            self._check_state(state, B)
        mask = rev_index = None
        if lengths is not None:
            lengths = lengths.to(x.device, torch.long)
            mask = length_mask(lengths, T)  # (B, T)
            t = torch.arange(T, device=x.device)[None, :]
            rev_index = torch.where(mask, lengths[:, None] - 1 - t, t)
            x = x.masked_fill(~mask[:, :, None], 0.0)
        finals: List[Tensor] = []
        y = x
        for k, layer in enumerate(self.layers):
            inp = y if layer.norm is None else layer.norm(y)
            outs = []
            for d, cell in enumerate([layer.cell, layer.cell_reverse][:self.num_directions]):
                h0 = None if state is None else state[k * self.num_directions + d]
                seq = inp
                if d == 1:
                    seq = inp.flip(1) if rev_index is None else _gather_time(inp, rev_index)
                h = cell.run(seq, h0, mask, self.method)  # (B, T, H)
                finals.append(h[:, -1])  # padding froze h: the last column is the final state
                if d == 1:
                    h = h.flip(1) if rev_index is None else _gather_time(h, rev_index)
                outs.append(h)
            out = torch.cat(outs, -1) if len(outs) > 1 else outs[0]  # (B, T, D*H)
            if layer.norm is None:
                y = out
            else:
                y = y + F.dropout(out, self.dropout, self.training)
            if mask is not None:
                y = y * mask[:, :, None].to(y.dtype)
        if self.norm is not None:
            y = self.norm(y)
            if mask is not None:
                y = y * mask[:, :, None].to(y.dtype)
        return y, torch.stack(finals)

    def step(self, x_t: Tensor, state: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """One time step: x_t (B, C) -> y_t (B, H); O(1) memory in the sequence length."""
        check_step_input(self, x_t, causal=not self.bidirectional)
        if state is None:
            state = self.initial_state(x_t.shape[0], x_t.device, x_t.dtype)
        self._check_state(state, x_t.shape[0])
        y, new = x_t, []
        for k, layer in enumerate(self.layers):
            if layer.norm is None:
                y = layer.cell.step(y, state[k])
                new.append(y)
            else:
                h = layer.cell.step(layer.norm(y), state[k])
                new.append(h)
                y = y + F.dropout(h, self.dropout, self.training)
        if self.norm is not None:
            y = self.norm(y)
        return y, torch.stack(new)

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"dropout={self.dropout}, bidirectional={self.bidirectional}, method={self.method!r}")


class MinGRU(MinRecurrent):
    """minGRU: one update gate z and a candidate h̃, both from x_t only."""

    kind = "mingru"


class MinLSTM(MinRecurrent):
    """minLSTM: forget and input gates from x_t only, normalised to sum to one."""

    kind = "minlstm"
