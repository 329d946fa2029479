"""Long short-term memory (Hochreiter & Schmidhuber 1997), in PyTorch's gate order i, f, g, o.

    i = σ(W_ii x + b_ii + W_hi h + b_hi)        input gate
    f = σ(W_if x + b_if + W_hf h + b_hf)        forget gate
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)     candidate cell
    o = σ(W_io x + b_io + W_ho h + b_ho)        output gate
    c' = f ⊙ c + i ⊙ g
    h' = o ⊙ tanh(c')

The additive cell path c' = f ⊙ c + ... is what lets gradients survive long time spans.
The forget-gate bias starts at ``forget_bias`` (1.0, Gers et al. 2000; Jozefowicz et al. 2015)
so that the cell remembers by default.
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor, nn

from .recurrent import CellSpec, FusedRecurrent, HandRecurrent, param_names


def lstm_cell(gi: Tensor, hx: Tuple[Tensor, Tensor], w_hh: Tensor, b_hh: Tensor):
    """gi = W_ih x + b_ih (B, 4H); hx = (h, c) each (B, H) -> (h', c')."""
    h, c = hx
    gates = gi + torch.nn.functional.linear(h, w_hh, b_hh)  # (B, 4H)
    i, f, g, o = gates.chunk(4, dim=-1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_new = torch.sigmoid(o) * torch.tanh(c_new)
    return h_new, c_new


SPEC = CellSpec(name="lstm", gates=4, n_state=2, cell=lstm_cell, torch_module=nn.LSTM)


def init_forget_bias(module: nn.Module, num_layers: int, bidirectional: bool, value: float) -> None:
    """Set the total forget-gate bias (b_ih + b_hh) of every layer to ``value``."""
    with torch.no_grad():
        for layer in range(num_layers):
            for reverse in ([False, True] if bidirectional else [False]):
                _, _, b_ih, b_hh = param_names(layer, reverse)
                bi, bh = getattr(module, b_ih), getattr(module, b_hh)
                H = bi.shape[0] // 4
                bi[H:2 * H].fill_(value)
                bh[H:2 * H].zero_()


class LSTM(FusedRecurrent, nn.LSTM):
    """Fused ``nn.LSTM`` under the encoder contract; state is ``(h, c)``, each (L*D, B, H)."""

    spec = SPEC

    def __init__(self, input_size, hidden_size, num_layers=1, dropout=0.0, bidirectional=False,
                 forget_bias: float | None = 1.0) -> None:
        super().__init__(input_size, hidden_size, num_layers, dropout, bidirectional)
        if forget_bias is not None:
            init_forget_bias(self, num_layers, bidirectional, forget_bias)


class HandLSTM(HandRecurrent):
    """The LSTM equations above, step by step; same parameter names as ``LSTM``."""

    spec = SPEC

    def __init__(self, input_size, hidden_size, num_layers=1, dropout=0.0, bidirectional=False,
                 forget_bias: float | None = 1.0) -> None:
        super().__init__(input_size, hidden_size, num_layers, dropout, bidirectional)
        if forget_bias is not None:
            init_forget_bias(self, num_layers, bidirectional, forget_bias)
