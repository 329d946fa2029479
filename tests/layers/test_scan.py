"""The scans of h_t = a_t h_{t-1} + b_t: every parallel route equals its sequential twin.

float64, max |difference| <= 1e-10 for values and gradients (the issue's bar).
"""

from __future__ import annotations

import math

import pytest
import torch

from rnnkit.layers.scan import (chunk_size, lerp_scan, linear_scan, log_scan, log_scan_loop, scan,
                                scan_loop)

TOL = 1e-10


def coeffs(B=2, T=37, H=3, seed=0, positive=False):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(B, T, H, dtype=torch.float64, generator=g)
    b = torch.randn(B, T, H, dtype=torch.float64, generator=g)
    h0 = torch.randn(B, H, dtype=torch.float64, generator=g)
    if positive:
        b, h0 = b.abs() + 0.01, h0.abs() + 0.01
    return a, b, h0


def grads(fn, *tensors):
    """Values and gradients of sum(fn(...) * w) for a fixed random w."""
    ts = [t.detach().clone().requires_grad_(True) if t is not None else None for t in tensors]
    out = fn(*ts)
    w = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(9))
    (out * w).sum().backward()
    return [out.detach()] + [t.grad for t in ts if t is not None]


def maxdiff(xs, ys):
    assert len(xs) == len(ys)
    return max((x - y).abs().max().item() for x, y in zip(xs, ys))


@pytest.mark.parametrize("T", [1, 2, 5, 37, 128])
@pytest.mark.parametrize("chunk", [None, 1, 4, 7, 200])
@pytest.mark.parametrize("with_h0", [False, True], ids=["h0=0", "h0"])
def test_chunked_scan_equals_loop_values_and_grads(T, chunk, with_h0):
    a, b, h0 = coeffs(T=T)
    h0 = h0 if with_h0 else None
    fast = grads(lambda a, b, h: linear_scan(a, b, h, chunk=chunk), a, b, h0)
    slow = grads(scan_loop, a, b, h0)
    assert maxdiff(fast, slow) <= TOL


@pytest.mark.parametrize("T", [1, 6, 64])
@pytest.mark.parametrize("with_h0", [False, True], ids=["h0=0", "h0"])
def test_lerp_scan_equals_loop_values_and_grads(T, with_h0):
    z, g, h0 = coeffs(T=T, seed=1)
    h0 = h0 if with_h0 else None
    fast = grads(lerp_scan, z, g, h0)
    slow = grads(lambda z, g, h: scan_loop(1 - z, z * g, h), z, g, h0)
    assert maxdiff(fast, slow) <= TOL


@pytest.mark.parametrize("with_h0", [False, True], ids=["h0=0", "h0"])
def test_log_scan_equals_its_loop_and_the_linear_scan(with_h0):
    a, b, h0 = coeffs(T=50, positive=True, seed=2)
    log_h0 = torch.log(h0) if with_h0 else None
    par = grads(log_scan, torch.log(a), torch.log(b), log_h0)
    seq = grads(log_scan_loop, torch.log(a), torch.log(b), log_h0)
    assert maxdiff(par, seq) <= TOL
    # and the log-space result is the linear scan's (exp(log h) == h)
    h = scan_loop(a, b, h0 if with_h0 else None)
    assert (torch.exp(par[0]) - h).abs().max().item() <= TOL


def test_scan_dispatch_routes_agree():
    a, b, h0 = coeffs(T=20, positive=True, seed=3)
    ref = scan_loop(a, b, h0)
    for method in ("chunked", "loop", "log"):
        assert (scan(a, b, h0, method=method) - ref).abs().max().item() <= TOL
    with pytest.raises(ValueError, match="chunked, log or loop"):
        scan(a, b, h0, method="fft")


def test_gradcheck_of_both_fused_scans():
    a, b, h0 = coeffs(B=1, T=9, H=2, seed=4)
    for t in (a, b, h0):
        t.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b, h: linear_scan(a, b, h, chunk=4), (a, b, h0))
    assert torch.autograd.gradcheck(lerp_scan, (a, b, h0))


def test_long_float32_scan_stays_accurate():
    """T = 4096 in float32 against a float64 loop: no drift, no overflow (a in [0, 1])."""
    g = torch.Generator().manual_seed(5)
    a = torch.rand(2, 4096, 8, dtype=torch.float64, generator=g) ** 0.01  # close to 1: long memory
    b = torch.randn(2, 4096, 8, dtype=torch.float64, generator=g)
    ref = scan_loop(a, b)
    for fast in (linear_scan(a.float(), b.float()), lerp_scan((1 - a).float(), (b / (1 - a)).float())):
        assert torch.isfinite(fast).all()
        rel = ((fast.double() - ref).abs().max() / ref.abs().max()).item()
        assert rel < 1e-4, rel


def test_chunk_size_balances_the_two_loops():
    assert chunk_size(1) == 1
    assert chunk_size(4096) == round(math.sqrt(2048))
    assert all(1 <= chunk_size(T) <= T for T in range(1, 300))


def test_bad_shapes_raise():
    a, b, h0 = coeffs()
    with pytest.raises(ValueError, match="share a"):
        linear_scan(a, b[:, :-1])
    with pytest.raises(ValueError, match="h0 must have shape"):
        linear_scan(a, b, h0[:, :-1])
    with pytest.raises(ValueError, match="share a"):
        lerp_scan(a[0], b[0])
