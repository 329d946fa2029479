"""Plumbing shared by the NumPy engine's recurrent cells: names, sizes and the cell interface.

Every architecture file (``rnn.py``, ``lstm.py``, ``gru.py``) writes its step equations as a
forward/backward pair and describes itself with a :class:`CellSpec`; ``sequence.py`` runs any
spec over time, over stacked layers and over both directions.

Parameter names and layouts are PyTorch's, so moving weights between ``torch.nn.RNN/LSTM/GRU``
and this engine is a dictionary copy::

    weight_ih_l{k}[_reverse]   (G*H, C_k)   C_0 = input_size, C_k = D*H for k > 0
    weight_hh_l{k}[_reverse]   (G*H, H)
    bias_ih_l{k}[_reverse]     (G*H,)
    bias_hh_l{k}[_reverse]     (G*H,)

with G gate blocks stacked along the rows (RNN 1; LSTM 4: i, f, g, o; GRU 3: r, z, n) and
D = 2 for a bidirectional encoder, else 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Tuple

import numpy as np

Array = np.ndarray
Params = Dict[str, np.ndarray]

# step forward: (x (B, C), state tuple of (B, H), w_ih, w_hh, b_ih, b_hh) -> (new state tuple, cache)
StepForward = Callable[..., Tuple[Tuple[Array, ...], Any]]
# step backward: (dstate tuple of (B, H), cache) -> (dx (B, C), dstate_prev tuple, grads dict)
StepBackward = Callable[[Tuple[Array, ...], Any], Tuple[Array, Tuple[Array, ...], Params]]

# The keys of the per-step gradient dict every cell backward returns.
WEIGHT_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


@dataclass(frozen=True)
class CellSpec:
    """What distinguishes one recurrent architecture from another in the engine.

    ``forward``/``backward`` are uniform adapters around the cell's own step pair, with the
    state as a tuple (``(h,)`` or ``(h, c)``) so the sequence code never asks which cell it runs.
    """

    name: str  # "rnn" (tanh), "rnn-relu", "lstm", "gru"
    gates: int  # gate blocks in W_ih / W_hh (RNN 1, LSTM 4, GRU 3)
    n_state: int  # arrays in the state (LSTM 2: h, c; RNN/GRU 1: h)
    forward: StepForward
    backward: StepBackward


def param_names(layer: int, reverse: bool = False) -> Tuple[str, str, str, str]:
    """PyTorch's names of one layer/direction: (weight_ih, weight_hh, bias_ih, bias_hh)."""
    sfx = f"_l{layer}" + ("_reverse" if reverse else "")
    return (f"weight_ih{sfx}", f"weight_hh{sfx}", f"bias_ih{sfx}", f"bias_hh{sfx}")


def sigmoid(x: Array) -> Array:
    """Logistic function without overflow: σ(x) = 1 / (1 + e^-x) computed through e^-|x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
