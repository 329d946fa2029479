"""PyTorch sequence encoders under one contract (see :mod:`rnnkit.layers.base`).

``build_encoder(name, ...)`` is the registry every task and config goes through: the names
come from :data:`_REGISTRY` (:data:`ENCODER_NAMES`, read by the config dataclasses and the
checkpoint schema without importing torch), and ``hand-*`` variants select the readable
step-by-step implementations (same weights, same results, slower). The classes are imported
on first use (PEP 562), so ``import rnnkit.layers`` alone stays torch-free.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, Tuple

# name -> (module, class, fixed keyword arguments): the one list of encoders
_REGISTRY: Dict[str, Tuple[str, str, Dict[str, Any]]] = {
    "lstm": ("lstm", "LSTM", {}),
    "gru": ("gru", "GRU", {}),
    "rnn": ("rnn", "RNN", {"nonlinearity": "tanh"}),
    "rnn-relu": ("rnn", "RNN", {"nonlinearity": "relu"}),
    "hand-lstm": ("lstm", "HandLSTM", {}),
    "hand-gru": ("gru", "HandGRU", {}),
    "hand-rnn": ("rnn", "HandRNN", {"nonlinearity": "tanh"}),
    "hand-rnn-relu": ("rnn", "HandRNN", {"nonlinearity": "relu"}),
    "mingru": ("mingru", "MinGRU", {}),
    "minlstm": ("mingru", "MinLSTM", {}),
    "tcn": ("tcn", "TCN", {}),
    "transformer": ("transformer", "Transformer", {}),
}
ENCODER_NAMES: Tuple[str, ...] = tuple(_REGISTRY)
# the step-by-step recurrent cells (usable as a seq2seq decoder: stepped with carried state)
RECURRENT_NAMES: Tuple[str, ...] = tuple(n for n, (m, _, _) in _REGISTRY.items() if m in ("lstm", "gru", "rnn"))

_LAZY = {"Encoder": "base", "State": "base", "detach_state": "base", "map_state": "base",
         "GRU": "gru", "HandGRU": "gru", "LSTM": "lstm", "HandLSTM": "lstm", "MinGRU": "mingru",
         "MinLSTM": "mingru", "RNN": "rnn", "HandRNN": "rnn", "TCN": "tcn", "Transformer": "transformer"}


def _factory(name: str):
    module, cls, fixed = _REGISTRY[name]
    make = getattr(importlib.import_module(f"{__name__}.{module}"), cls)
    return (lambda i, h, **kw: make(i, h, **fixed, **kw)) if fixed else make


def build_encoder(name: str, input_size: int, hidden_size: int, num_layers: int = 1,
                  dropout: float = 0.0, bidirectional: bool = False):
    """Build a registered encoder by name (``rnnkit.layers.ENCODER_NAMES`` lists them)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown encoder {name!r}; choose one of {', '.join(ENCODER_NAMES)}")
    return _factory(name)(input_size, hidden_size, num_layers=num_layers, dropout=dropout,
                          bidirectional=bidirectional)


def __getattr__(attr: str):
    if attr == "ENCODERS":  # name -> constructor, as before (imports torch)
        return {n: _factory(n) for n in ENCODER_NAMES}
    if attr in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[attr]}"), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


__all__ = [
    "ENCODERS", "ENCODER_NAMES", "Encoder", "GRU", "HandGRU", "HandLSTM", "HandRNN", "LSTM", "MinGRU", "MinLSTM",
    "RECURRENT_NAMES", "RNN", "State", "TCN", "Transformer",
    "build_encoder", "detach_state", "map_state",
]
