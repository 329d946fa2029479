"""NumPy-only reference engine: Elman RNN, LSTM and GRU with hand-written backpropagation.

Imports NumPy and the standard library only (never torch), so ``import rnnkit.reference``
works where torch is not installed. PyTorch's parameter names, layouts and gate orders
throughout: weights move between ``torch.nn.RNN/LSTM/GRU`` and this engine as a dict copy.
See docs/reference.md.
"""

from .base import CellSpec, param_names, sigmoid
from .gradcheck import check_gradients, numerical_gradient, relative_error
from .gru import GRU, gru_step_backward, gru_step_forward
from .lstm import LSTM, lstm_step_backward, lstm_step_forward
from .ops import (cross_entropy_backward, cross_entropy_forward, embedding_backward,
                  embedding_forward, linear_backward, linear_forward, log_softmax)
from .optim import SGD, Adagrad, Adam, AdamW, Optimizer, clip_grad_norm, clip_grad_value
from .rnn import RNN_RELU, RNN_TANH, SimpleRNN, rnn_step_backward, rnn_step_forward
from .sequence import (CELLS, RecurrentSpec, init_params, layer_backward, layer_forward,
                       recurrent_backward, recurrent_forward, spec_from_params, zero_state)

__all__ = [
    "CELLS", "GRU", "LSTM", "RNN_RELU", "RNN_TANH", "SGD", "Adagrad", "Adam", "AdamW", "CellSpec",
    "Optimizer", "RecurrentSpec", "SimpleRNN", "check_gradients", "clip_grad_norm",
    "clip_grad_value", "cross_entropy_backward", "cross_entropy_forward", "embedding_backward",
    "embedding_forward", "gru_step_backward", "gru_step_forward", "init_params",
    "layer_backward", "layer_forward", "linear_backward", "linear_forward", "log_softmax",
    "lstm_step_backward", "lstm_step_forward", "numerical_gradient", "param_names",
    "recurrent_backward", "recurrent_forward", "relative_error", "rnn_step_backward",
    "rnn_step_forward", "sigmoid", "spec_from_params", "zero_state",
]
