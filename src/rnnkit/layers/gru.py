"""Gated recurrent unit (Cho et al. 2014), in PyTorch's gate order r, z, n.

    r = σ(W_ir x + b_ir + W_hr h + b_hr)            reset gate
    z = σ(W_iz x + b_iz + W_hz h + b_hz)            update gate
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))   candidate (reset applied after W_hn h + b_hn)
    h' = (1 - z) ⊙ n + z ⊙ h
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor, nn

from .recurrent import CellSpec, FusedRecurrent, HandRecurrent


def gru_cell(gi: Tensor, hx: Tuple[Tensor], w_hh: Tensor, b_hh: Tensor):
    """gi = W_ih x + b_ih (B, 3H); hx = (h,) (B, H) -> (h',)."""
    (h,) = hx
    gh = torch.nn.functional.linear(h, w_hh, b_hh)  # (B, 3H)
    i_r, i_z, i_n = gi.chunk(3, dim=-1)
    h_r, h_z, h_n = gh.chunk(3, dim=-1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return ((1 - z) * n + z * h,)


SPEC = CellSpec(name="gru", gates=3, n_state=1, cell=gru_cell, torch_module=nn.GRU)


class GRU(FusedRecurrent, nn.GRU):
    """Fused ``nn.GRU`` under the encoder contract; state ``h`` is (L*D, B, H)."""

    spec = SPEC


class HandGRU(HandRecurrent):
    """The GRU equations above, step by step; same parameter names as ``GRU``."""

    spec = SPEC
