"""Run the NumPy engine and torch.nn.RNN/LSTM/GRU on the same weights, inputs and loss.

The loss is a fixed random projection of everything the encoder returns,
L = Σ y ⊙ Gy + Σ h_T ⊙ Gh (+ Σ c_T ⊙ Gc), so every output and final state receives a
gradient; both implementations are asked for dL/dparams, dL/dx and dL/d(initial state).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.reference import RecurrentSpec, init_params, recurrent_backward, recurrent_forward

TORCH = {
    "rnn": (torch.nn.RNN, {"nonlinearity": "tanh"}),
    "rnn-relu": (torch.nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (torch.nn.LSTM, {}),
    "gru": (torch.nn.GRU, {}),
}


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def make_problem(spec: RecurrentSpec, B: int, T: int, seed: int = 0, dtype=np.float64,
                 lengths=None):
    """Random params, input, initial state and loss projections for ``spec``."""
    rng = np.random.default_rng(seed)
    params = init_params(spec, rng, dtype)
    x = rng.standard_normal((B, T, spec.input_size)).astype(dtype)
    shape = (spec.num_layers * spec.num_directions, B, spec.hidden_size)
    n = spec.cell_spec.n_state
    state0 = tuple(rng.standard_normal(shape).astype(dtype) * 0.5 for _ in range(n))
    gy = rng.standard_normal((B, T, spec.output_size)).astype(dtype)
    gstate = tuple(rng.standard_normal(shape).astype(dtype) for _ in range(n))
    if lengths is not None:
        gy = gy * (np.arange(T)[None, :, None] < np.asarray(lengths)[:, None, None])
    return params, x, state0, gy, gstate


def pack(state_tuple):
    return state_tuple[0] if len(state_tuple) == 1 else state_tuple


def numpy_run(spec, params, x, state0, gy, gstate, lengths=None):
    y, state, cache = recurrent_forward(spec, params, x, pack(state0), lengths)
    loss = float((y * gy).sum() + sum((s * g).sum() for s, g in zip(as_tuple(state), gstate)))
    dx, dstate0, grads, dh = recurrent_backward(gy, pack(gstate), cache)
    return dict(loss=loss, y=y, state=as_tuple(state), dx=dx, dstate0=as_tuple(dstate0),
                grads=grads, dh=dh)


def torch_run(spec, params, x, state0, gy, gstate, lengths=None):
    cls, kw = TORCH[spec.cell]
    dtype = torch.float64 if x.dtype == np.float64 else torch.float32
    module = cls(spec.input_size, spec.hidden_size, spec.num_layers, batch_first=True,
                 bidirectional=spec.bidirectional, **kw).to(dtype)
    module.load_state_dict({n: torch.from_numpy(p.copy()) for n, p in params.items()})
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    s0 = tuple(torch.from_numpy(s.copy()).requires_grad_(True) for s in state0)
    if lengths is None:
        y, state = module(xt, pack(s0))
    else:
        packed = pack_padded_sequence(xt, torch.as_tensor(lengths), batch_first=True, enforce_sorted=False)
        out, state = module(packed, pack(s0))
        y, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    state = as_tuple(state)
    loss = (y * torch.from_numpy(gy)).sum() + sum((s * torch.from_numpy(g)).sum()
                                                  for s, g in zip(state, gstate))
    loss.backward()
    return dict(loss=float(loss.detach()), y=y.detach().numpy(), state=tuple(s.detach().numpy() for s in state),
                dx=xt.grad.numpy(), dstate0=tuple(s.grad.numpy() for s in s0),
                grads={n: p.grad.numpy() for n, p in module.named_parameters()})
