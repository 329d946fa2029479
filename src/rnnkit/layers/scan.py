"""Scans of the first-order linear recurrence behind minGRU / minLSTM (Feng et al. 2024).

    h_t = a_t ⊙ h_{t-1} + b_t          t = 0 … T-1, h_{-1} = h0          (B, T, H)

The coefficients depend on x_t only, so the whole sequence is known before the recurrence
runs and it can be evaluated in parallel. Three routes to the same answer, each a pure
function, plus their sequential twins (the executable definitions the tests compare with):

* :func:`linear_scan` -- the fast one used for training. A *chunked* scan: the time axis is cut
  into ``n`` chunks of ``L`` steps; every chunk is scanned from a zero state with all chunks
  in parallel (``L`` vectorised steps over ``(B, n, H)`` slices), the chunk-end states are
  chained (``n`` small steps over ``(B, H)``), and each chunk is corrected by the cumulative
  product of its ``a``::

        h_t = h^loc_t + (∏_{s in chunk, s <= t} a_s) ⊙ h_{chunk start - 1}

  with ``L ≈ sqrt(T / 2)`` this is O(T) work in about ``2 sqrt(2T)`` vectorised torch calls
  instead of ``T``. Nothing is ever divided and every factor is a product of ``a`` in
  [0, 1] (minGRU's ``1 - z``), so values only shrink: no overflow, no cancellation; an
  underflow to 0 happens only where the exact contribution is below 1e-38 anyway. The
  backward pass is the same scan run in reverse (``dh_t = g_t + a_{t+1} dh_{t+1}``), so
  autograd stores only ``a`` and ``h`` and no per-step graph is built.
* :func:`log_scan` -- the paper's log-space scan (Heinsen 2023) for positive ``b`` and ``h``:
  ``log h_t = A_t + logcumsumexp_{s<=t}(log b_s - A_s)``, ``A_t = Σ_{s<=t} log a_s``. Kept
  as the reference of the paper's formulation; it is ~2-7x slower than :func:`linear_scan`
  on CPU (``logcumsumexp`` dominates) and loses float32 precision when ``-A_t`` grows large.
* :func:`scan_loop` / :func:`log_scan_loop` -- one step at a time, the definition itself.

All four agree to float64 round-off (tests/layers/test_scan.py).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor


# -- sequential twins (the definitions) --------------------------------------------------------
def scan_loop(a: Tensor, b: Tensor, h0: Optional[Tensor] = None) -> Tensor:
    """h_t = a_t * h_{t-1} + b_t one step at a time; a, b (B, T, H), h0 (B, H) -> h (B, T, H)."""
    h = torch.zeros_like(b[:, 0]) if h0 is None else h0
    out = []
    for a_t, b_t in zip(a.unbind(1), b.unbind(1)):
        h = a_t * h + b_t
        out.append(h)
    return torch.stack(out, 1)


def log_scan_loop(log_a: Tensor, log_b: Tensor, log_h0: Optional[Tensor] = None) -> Tensor:
    """log h_t = logaddexp(log a_t + log h_{t-1}, log b_t), step by step (h0 = 0 if absent)."""
    log_h = torch.full_like(log_b[:, 0], -math.inf) if log_h0 is None else log_h0
    out = []
    for la, lb in zip(log_a.unbind(1), log_b.unbind(1)):
        log_h = torch.logaddexp(la + log_h, lb)
        out.append(log_h)
    return torch.stack(out, 1)


# -- the paper's log-space parallel scan ---------------------------------------------------------
def log_scan(log_a: Tensor, log_b: Tensor, log_h0: Optional[Tensor] = None) -> Tensor:
    """Heinsen's parallel scan in log space: (B, T, H) log-coefficients -> log h (B, T, H)."""
    a_star = torch.cumsum(log_a, dim=1)  # (B, T, H): log ∏_{s<=t} a_s
    terms = log_b - a_star
    log_h = a_star + torch.logcumsumexp(terms, dim=1)
    if log_h0 is not None:
        log_h = torch.logaddexp(log_h, a_star + log_h0[:, None])
    return log_h


# -- the fast chunked scan -------------------------------------------------------------------------
def chunk_size(T: int) -> int:
    """Steps per chunk: ~sqrt(T/2) balances the within-chunk and across-chunk loops."""
    return max(1, min(T, int(round(math.sqrt(T / 2)))))


def _chunked(a: Tensor, b: Tensor, h0: Optional[Tensor], reverse: bool, L: int) -> Tensor:
    """The chunked scan (no autograd). a, b (B, T, H) contiguous; returns h (B, T, H).

    ``reverse``: h_t = a_t * h_{t+1} + b_t, running from t = T-1 down to 0.
    """
    B, T, H = b.shape
    n = -(-T // L)
    pad = n * L - T
    if pad:  # zero padding: at the end (forward) it is never read back; reverse starts there
        a = F.pad(a, (0, 0, 0, pad) if not reverse else (0, 0, pad, 0))
        b = F.pad(b, (0, 0, 0, pad) if not reverse else (0, 0, pad, 0))
    a4, b4 = a.view(B, n, L, H), b.view(B, n, L, H)
    h4 = torch.empty_like(b4)  # local scans from a zero state
    p4 = torch.empty_like(a4)  # cumulative products of a inside each chunk
    order = range(L - 1, -1, -1) if reverse else range(L)
    prev = None
    for t in order:
        if prev is None:
            h4[:, :, t] = b4[:, :, t]
            p4[:, :, t] = a4[:, :, t]
        else:
            torch.addcmul(b4[:, :, t], a4[:, :, t], h4[:, :, prev], out=h4[:, :, t])
            torch.mul(a4[:, :, t], p4[:, :, prev], out=p4[:, :, t])
        prev = t
    # chain the chunks: the state entering chunk c is the exact end state of chunk c-1
    last = 0 if reverse else L - 1
    start = torch.empty(B, n, H, dtype=b.dtype, device=b.device)
    carry = torch.zeros(B, H, dtype=b.dtype, device=b.device) if h0 is None else h0
    chunks = range(n - 1, -1, -1) if reverse else range(n)
    for c in chunks:
        start[:, c] = carry
        carry = torch.addcmul(h4[:, c, last], p4[:, c, last], carry)
    h4.addcmul_(p4, start[:, :, None, :])  # (B, n, L, H) += (B, n, L, H) * (B, n, 1, H)
    h = h4.view(B, n * L, H)
    if pad:
        h = h[:, pad:] if reverse else h[:, :T]
    return h


class _LinearScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, h0: Optional[Tensor], L: int):
        a, b = a.contiguous(), b.contiguous()
        h = _chunked(a, b, None if h0 is None else h0.contiguous(), False, L)
        ctx.save_for_backward(a, h, h0)
        ctx.L = L
        return h

    @staticmethod
    def backward(ctx, g: Tensor):
        a, h, h0 = ctx.saved_tensors
        # dL/dh_t (total) = g_t + a_{t+1} dL/dh_{t+1}: the same recurrence, run backwards
        a_next = torch.zeros_like(a)
        a_next[:, :-1] = a[:, 1:]
        dh = _chunked(a_next, g.contiguous(), None, True, ctx.L)
        h_prev = torch.empty_like(h)  # h_{t-1}, with h_{-1} = h0
        h_prev[:, 1:] = h[:, :-1]
        if h0 is None:
            h_prev[:, 0] = 0
        else:
            h_prev[:, 0] = h0
        da = dh * h_prev if ctx.needs_input_grad[0] else None
        dh0 = a[:, 0] * dh[:, 0] if (h0 is not None and ctx.needs_input_grad[2]) else None
        return da, dh, dh0, None


def linear_scan(a: Tensor, b: Tensor, h0: Optional[Tensor] = None,
                chunk: Optional[int] = None) -> Tensor:
    """Fast chunked scan of h_t = a_t * h_{t-1} + b_t; a, b (B, T, H), h0 (B, H) -> h (B, T, H).

    Differentiable in ``a``, ``b`` and ``h0`` (the backward pass is a reverse chunked scan).
    ``chunk`` overrides the steps per chunk (default :func:`chunk_size`).
    """
    if a.shape != b.shape or a.dim() != 3:
        raise ValueError(f"a and b must share a (B, T, H) shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if h0 is not None and h0.shape != (b.shape[0], b.shape[2]):
        raise ValueError(f"h0 must have shape {(b.shape[0], b.shape[2])}, got {tuple(h0.shape)}")
    T = b.shape[1]
    if T == 0:
        return b.clone()
    return _LinearScan.apply(a, b, h0, chunk or chunk_size(T))


class _LerpScan(torch.autograd.Function):
    """h_t = h_{t-1} + z_t (g_t - h_{t-1}) = lerp(h_{t-1}, g_t, z_t), in one fused step per t."""

    @staticmethod
    def forward(ctx, z: Tensor, g: Tensor, h0: Optional[Tensor]):
        z, g = z.contiguous(), g.contiguous()
        h = torch.empty_like(g)
        prev = torch.zeros_like(g[:, 0]) if h0 is None else h0
        zs, gs, hs = z.unbind(1), g.unbind(1), h.unbind(1)  # views, taken once
        for t in range(g.shape[1]):
            torch.lerp(prev, gs[t], zs[t], out=hs[t])
            prev = hs[t]
        ctx.save_for_backward(z, g, h, h0)
        return h

    @staticmethod
    def backward(ctx, grad: Tensor):
        z, g, h, h0 = ctx.saved_tensors
        grad = grad.contiguous()
        a_next = torch.empty_like(z)  # a_{t+1} = 1 - z_{t+1}; 0 after the last step
        torch.sub(1.0, z[:, 1:], out=a_next[:, :-1])
        a_next[:, -1] = 0
        dh = torch.empty_like(grad)  # total dL/dh_t = grad_t + a_{t+1} dL/dh_{t+1}
        ds, gs, As = dh.unbind(1), grad.unbind(1), a_next.unbind(1)
        nxt = None
        for t in range(grad.shape[1] - 1, -1, -1):
            if nxt is None:
                ds[t].copy_(gs[t])
            else:
                torch.addcmul(gs[t], As[t], nxt, out=ds[t])
            nxt = ds[t]
        dg = dh * z if ctx.needs_input_grad[1] else None
        dz = None
        if ctx.needs_input_grad[0]:
            dz = torch.empty_like(g)  # dL/dz_t = dh_t (g_t - h_{t-1})
            torch.sub(g[:, 1:], h[:, :-1], out=dz[:, 1:])
            torch.sub(g[:, 0], 0 if h0 is None else h0, out=dz[:, 0])
            dz.mul_(dh)
        dh0 = None
        if h0 is not None and ctx.needs_input_grad[2]:
            dh0 = (1 - z[:, 0]) * dh[:, 0]
        return dz, dg, dh0


def lerp_scan(z: Tensor, g: Tensor, h0: Optional[Tensor] = None) -> Tensor:
    """minGRU's recurrence h_t = (1 - z_t) h_{t-1} + z_t g_t as one fused op per step.

    The same scan as ``linear_scan(1 - z, z * g, h0)`` without materialising ``a`` and ``b``;
    forward is one ``lerp`` per step, backward one ``addcmul`` per step plus three
    elementwise passes, and autograd keeps only ``z``, ``g`` and ``h``. On a memory-bound CPU
    this touches the fewest bytes of all the routes (see docs/encoders.md).
    """
    if z.shape != g.shape or z.dim() != 3:
        raise ValueError(f"z and g must share a (B, T, H) shape, got {tuple(z.shape)} and {tuple(g.shape)}")
    if h0 is not None and h0.shape != (g.shape[0], g.shape[2]):
        raise ValueError(f"h0 must have shape {(g.shape[0], g.shape[2])}, got {tuple(h0.shape)}")
    if g.shape[1] == 0:
        return g.clone()
    return _LerpScan.apply(z, g, h0)


def scan(a: Tensor, b: Tensor, h0: Optional[Tensor] = None, method: str = "chunked") -> Tensor:
    """Dispatch by ``method``: ``chunked`` (fast, default), ``log`` (paper; needs b, h0 > 0),
    ``loop`` (sequential twin). All return h (B, T, H)."""
    if method == "chunked":
        return linear_scan(a, b, h0)
    if method == "loop":
        return scan_loop(a, b, h0)
    if method == "log":
        return torch.exp(log_scan(torch.log(a), torch.log(b), None if h0 is None else torch.log(h0)))
    raise ValueError(f"scan method must be chunked, log or loop, got {method!r}")


__all__ = ["chunk_size", "lerp_scan", "linear_scan", "log_scan", "log_scan_loop", "scan", "scan_loop"]

