"""The one parity helper of the layer tests, plus small shared builders.

``run_with_grads`` runs an encoder on float64 inputs and returns its outputs together with the
gradients of a fixed random scalar loss; ``assert_parity`` compares two such runs entry by entry.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
from torch import Tensor, nn

from rnnkit.layers import build_encoder

CELLS = ["rnn", "rnn-relu", "lstm", "gru"]
ALL_NAMES = CELLS + [f"hand-{c}" for c in CELLS]
B, T, C, H = 3, 6, 4, 5
LENGTHS = [6, 1, 4]  # a full row, a length-1 row, one in between; deliberately unsorted
TOL = 1e-10


def state_parts(state) -> tuple:
    """``h`` or ``(h, c)`` -> a tuple of tensors."""
    return (state,) if isinstance(state, Tensor) else tuple(state)


def n_state(name: str) -> int:
    return 2 if name.endswith("lstm") else 1


def make_pair(cell: str, num_layers: int = 1, bidirectional: bool = False,
              dtype=torch.float64, input_size: int = C, hidden_size: int = H):
    """A fused encoder and the hand-written one holding the very same weights."""
    fused = build_encoder(cell, input_size, hidden_size, num_layers=num_layers,
                          bidirectional=bidirectional).to(dtype)
    hand = build_encoder(f"hand-{cell}", input_size, hidden_size, num_layers=num_layers,
                         bidirectional=bidirectional).to(dtype)
    hand.load_state_dict(fused.state_dict())  # strict: names and shapes must match
    return fused, hand


def plain_torch(cell: str, num_layers: int, bidirectional: bool, input_size: int = C,
                hidden_size: int = H) -> nn.Module:
    """The stock torch.nn module of a cell name (batch_first, float64)."""
    kwargs = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=True)
    if cell == "rnn":
        return nn.RNN(input_size, hidden_size, nonlinearity="tanh", **kwargs).double()
    if cell == "rnn-relu":
        return nn.RNN(input_size, hidden_size, nonlinearity="relu", **kwargs).double()
    return {"lstm": nn.LSTM, "gru": nn.GRU}[cell](input_size, hidden_size, **kwargs).double()


def random_state(name: str, num_layers: int, bidirectional: bool, batch: int = B,
                 gen: Optional[torch.Generator] = None):
    D = 2 if bidirectional else 1
    parts = [torch.randn(num_layers * D, batch, H, dtype=torch.float64, generator=gen)
             for _ in range(n_state(name))]
    return parts[0] if len(parts) == 1 else tuple(parts)


def run_with_grads(enc: nn.Module, x: Tensor, state=None, lengths: Optional[Tensor] = None,
                   seed: int = 0) -> Dict[str, Tensor]:
    """Forward + backward of ``sum(y * wy) + sum(state_i * ws_i)`` with fixed random weights.

    Returns y, the final state parts, and the gradients w.r.t. every parameter, ``x`` and the
    initial state parts. Inputs are cloned so the two runs of a comparison do not share grads.
    """
    enc.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_(True)
    s0 = None
    if state is not None:
        s0 = tuple(p.detach().clone().requires_grad_(True) for p in state_parts(state))
        state_in = s0[0] if len(s0) == 1 else s0
    else:
        state_in = None
    y, state_out = enc(x, state_in, lengths=lengths)
    finals = state_parts(state_out)
    gen = torch.Generator().manual_seed(seed)
    loss = (y * torch.randn(y.shape, dtype=y.dtype, generator=gen)).sum()
    for f in finals:
        loss = loss + (f * torch.randn(f.shape, dtype=f.dtype, generator=gen)).sum()
    loss.backward()
    out = {"y": y.detach()}
    out.update({f"state[{i}]": f.detach() for i, f in enumerate(finals)})
    out["grad x"] = x.grad
    if s0 is not None:
        out.update({f"grad state0[{i}]": p.grad for i, p in enumerate(s0)})
    for pname, p in enc.named_parameters():
        out[f"grad {pname}"] = p.grad
    return out


def assert_parity(a: Dict[str, Tensor], b: Dict[str, Tensor], tol: float = TOL) -> None:
    """Same keys, same shapes, max |a - b| <= tol for every entry (None grads count as zero)."""
    assert a.keys() == b.keys()
    for key in a:
        ta, tb = a[key], b[key]
        assert ta is not None and tb is not None, f"{key}: missing gradient"
        assert ta.shape == tb.shape, f"{key}: {tuple(ta.shape)} != {tuple(tb.shape)}"
        diff = (ta - tb).abs().max().item() if ta.numel() else 0.0
        assert diff <= tol, f"{key}: max abs diff {diff:.3e} > {tol:.0e}"


def reverse_within(x: Tensor, lengths: Sequence[int]) -> Tensor:
    """Reverse every row of x (B, T, ...) inside its own length; padding stays in place."""
    out = x.clone()
    for b, n in enumerate(lengths):
        out[b, :n] = x[b, :n].flip(0)
    return out
