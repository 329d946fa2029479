"""Elman recurrent network (Elman 1990): the tutorial's h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh).

``nonlinearity`` is ``"tanh"`` (the classic) or ``"relu"``. PyTorch names and layout.
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor, nn

from .recurrent import CellSpec, FusedRecurrent, HandRecurrent


def rnn_tanh_cell(gi: Tensor, hx: Tuple[Tensor], w_hh: Tensor, b_hh: Tensor):
    (h,) = hx
    return (torch.tanh(gi + torch.nn.functional.linear(h, w_hh, b_hh)),)


def rnn_relu_cell(gi: Tensor, hx: Tuple[Tensor], w_hh: Tensor, b_hh: Tensor):
    (h,) = hx
    return (torch.relu(gi + torch.nn.functional.linear(h, w_hh, b_hh)),)


TANH = CellSpec(name="rnn", gates=1, n_state=1, cell=rnn_tanh_cell, torch_module=nn.RNN,
                torch_kwargs=(("nonlinearity", "tanh"),))
RELU = CellSpec(name="rnn", gates=1, n_state=1, cell=rnn_relu_cell, torch_module=nn.RNN,
                torch_kwargs=(("nonlinearity", "relu"),))
_SPECS = {"tanh": TANH, "relu": RELU}


def _spec(nonlinearity: str) -> CellSpec:
    if nonlinearity not in _SPECS:
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return _SPECS[nonlinearity]


class RNN(FusedRecurrent, nn.RNN):
    """Fused ``nn.RNN`` under the encoder contract; state ``h`` is (L*D, B, H)."""

    def __init__(self, input_size, hidden_size, num_layers=1, dropout=0.0, bidirectional=False,
                 nonlinearity: str = "tanh") -> None:
        object.__setattr__(self, "spec", _spec(nonlinearity))
        super().__init__(input_size, hidden_size, num_layers, dropout, bidirectional)


class HandRNN(HandRecurrent):
    """The Elman equation step by step; same parameter names as ``RNN``."""

    def __init__(self, input_size, hidden_size, num_layers=1, dropout=0.0, bidirectional=False,
                 nonlinearity: str = "tanh") -> None:
        object.__setattr__(self, "spec", _spec(nonlinearity))
        super().__init__(input_size, hidden_size, num_layers, dropout, bidirectional)
        self.nonlinearity = nonlinearity
