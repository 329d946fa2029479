"""PyTorch sequence encoders under one contract (see :mod:`rnnkit.layers.base`).

``build_encoder(name, ...)`` is the registry every task and config goes through: the names
are derived from :data:`ENCODERS`, and ``hand-*`` variants select the readable step-by-step
implementations (same weights, same results, slower).
"""

from __future__ import annotations

from typing import Callable, Dict

from .base import Encoder, State, detach_state, map_state
from .gru import GRU, HandGRU
from .lstm import LSTM, HandLSTM
from .mingru import MinGRU, MinLSTM
from .rnn import RNN, HandRNN
from .tcn import TCN
from .transformer import Transformer

ENCODERS: Dict[str, Callable[..., Encoder]] = {
    "rnn": lambda i, h, **kw: RNN(i, h, nonlinearity="tanh", **kw),
    "rnn-relu": lambda i, h, **kw: RNN(i, h, nonlinearity="relu", **kw),
    "lstm": LSTM,
    "gru": GRU,
    "hand-rnn": lambda i, h, **kw: HandRNN(i, h, nonlinearity="tanh", **kw),
    "hand-rnn-relu": lambda i, h, **kw: HandRNN(i, h, nonlinearity="relu", **kw),
    "hand-lstm": HandLSTM,
    "hand-gru": HandGRU,
    "mingru": MinGRU,
    "minlstm": MinLSTM,
    "tcn": TCN,
    "transformer": Transformer,
}


def build_encoder(name: str, input_size: int, hidden_size: int, num_layers: int = 1,
                  dropout: float = 0.0, bidirectional: bool = False) -> Encoder:
    """Build a registered encoder by name (``rnnkit.layers.ENCODERS`` lists them)."""
    try:
        make = ENCODERS[name]
    except KeyError:
        raise ValueError(f"unknown encoder {name!r}; choose one of {', '.join(ENCODERS)}") from None
    return make(input_size, hidden_size, num_layers=num_layers, dropout=dropout,
                bidirectional=bidirectional)


__all__ = [
    "ENCODERS", "Encoder", "GRU", "HandGRU", "HandLSTM", "HandRNN", "LSTM", "MinGRU", "MinLSTM",
    "RNN", "State", "TCN", "Transformer",
    "build_encoder", "detach_state", "map_state",
]
