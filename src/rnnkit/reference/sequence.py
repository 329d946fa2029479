"""Sequences, stacked layers and both directions, for any cell, with backpropagation through time.

The encoder contract of rnnkit, in NumPy (batch first, PyTorch's state layout)::

    y, state, cache = recurrent_forward(spec, params, x, state=None, lengths=None)
        x (B, T, C) -> y (B, T, D*H); state h (L*D, B, H), or (h, c) for the LSTM
    dx, dstate0, grads, dh = recurrent_backward(dy, dstate, cache)
        dy (B, T, D*H) and dL/d(final state) -> dL/dx, dL/d(initial state), dL/dparams,
        and dh (L*D, B, T, H): dL/dh_t of every layer, direction and step

Layer k of a stacked encoder reads the outputs of layer k-1 (both directions concatenated,
forward first, as PyTorch). The reverse direction reads the sequence from its last real step
back to t = 0 and starts from its own initial state, ``state[k*D + 1]``.

**Variable lengths.** With ``lengths`` (B,), row b only has steps t < lengths[b]. As in
PyTorch's packed sequences, steps past the end are skipped: the state is not updated there,
``y`` is zero there, the returned state is the one after the row's last real step (forward) or
after t = 0 (reverse), and padding receives no gradient. In equations, with m_t = [t < len]:

    h_t = m_t ? cell(x_t, h_{t-1}) : h_{t-1}          y_t = m_t ? h_t : 0

**Truncated BPTT.** Feed the final state of one chunk as the initial state of the next; a
truncated backward simply drops ``dstate0`` (NumPy has no graph to detach). Passing the next
chunk's ``dstate0`` as this chunk's ``dstate`` instead gives exactly the gradient of the whole
sequence (tests/reference/test_ref_sequence.py checks both).

Dropout between layers is not implemented (the engine is an exact oracle).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Tuple, Union

import numpy as np

from .base import WEIGHT_KEYS, Array, CellSpec, Params, param_names
from .gru import GRU
from .lstm import LSTM
from .rnn import RNN_RELU, RNN_TANH

# rnnkit's encoder names (rnnkit.layers.ENCODERS): "rnn" is the tanh Elman RNN
CELLS = {"rnn": RNN_TANH, "rnn-relu": RNN_RELU, "lstm": LSTM, "gru": GRU}
State = Union[Array, Tuple[Array, Array]]


@dataclass(frozen=True)
class RecurrentSpec:
    """Sizes of a (stacked, possibly bidirectional) recurrent encoder, as ``torch.nn.RNN``'s."""

    cell: str  # "rnn" (tanh), "rnn-relu", "lstm" or "gru"
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bidirectional: bool = False

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {self.cell!r}")
        if min(self.input_size, self.hidden_size, self.num_layers) < 1:
            raise ValueError("input_size, hidden_size and num_layers must be >= 1")

    @property
    def cell_spec(self) -> CellSpec:
        return CELLS[self.cell]

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        return self.num_directions * self.hidden_size

    def layer_input_size(self, layer: int) -> int:
        return self.input_size if layer == 0 else self.output_size

    def names(self) -> List[str]:
        """Every parameter name, in PyTorch's order."""
        return [n for k in range(self.num_layers) for d in range(self.num_directions)
                for n in param_names(k, d == 1)]


def spec_from_params(cell: str, params: Params) -> RecurrentSpec:
    """Read the sizes of an encoder back from its parameter dict (the cell type is not in it)."""
    G = CELLS[cell].gates
    num_layers = 1 + max(int(n.split("_l")[1].split("_")[0]) for n in params if n.startswith("weight_ih_l"))
    return RecurrentSpec(cell, input_size=params["weight_ih_l0"].shape[1],
                         hidden_size=params["weight_hh_l0"].shape[0] // G, num_layers=num_layers,
                         bidirectional="weight_ih_l0_reverse" in params)


def init_params(spec: RecurrentSpec, rng: Optional[np.random.Generator] = None,
                dtype=np.float64) -> Params:
    """PyTorch's initialisation: every weight and bias ~ U(-1/√H, 1/√H)."""
    rng = np.random.default_rng() if rng is None else rng
    H, G = spec.hidden_size, spec.cell_spec.gates
    bound = 1.0 / np.sqrt(H)
    params: Params = {}
    for k in range(spec.num_layers):
        for d in range(spec.num_directions):
            w_ih, w_hh, b_ih, b_hh = param_names(k, d == 1)
            shapes = {w_ih: (G * H, spec.layer_input_size(k)), w_hh: (G * H, H), b_ih: (G * H,), b_hh: (G * H,)}
            for name, shape in shapes.items():
                params[name] = rng.uniform(-bound, bound, shape).astype(dtype)
    return params


def zero_state(spec: RecurrentSpec, batch_size: int, dtype=np.float64) -> State:
    """Zeros of the state's shape: h (L*D, B, H), or (h, c) for the LSTM."""
    shape = (spec.num_layers * spec.num_directions, batch_size, spec.hidden_size)
    parts = tuple(np.zeros(shape, dtype) for _ in range(spec.cell_spec.n_state))
    return _pack(spec, parts)


def length_mask(lengths: Optional[Array], B: int, T: int) -> Optional[Array]:
    """(B,) true lengths -> (B, T) bool mask, True on real steps; None stays None."""
    if lengths is None:
        return None
    lengths = np.asarray(lengths)
    if lengths.shape != (B,):
        raise ValueError(f"lengths must have shape ({B},), got {lengths.shape}")
    if B and (lengths.min() < 1 or lengths.max() > T):
        raise ValueError(f"lengths must lie in [1, {T}]")
    return np.arange(T)[None, :] < lengths[:, None]


# ---------------------------------------------------------------------------------------------
# one layer, one direction


def layer_forward(cell: CellSpec, x: Array, state0: Tuple[Array, ...], weights: Tuple[Array, ...],
                  reverse: bool = False, mask: Optional[Array] = None
                  ) -> Tuple[Array, Tuple[Array, ...], tuple]:
    """Run one cell over time. x (B, T, C), state0 tuple of (B, H) -> y (B, T, H), state, cache."""
    B, T, _ = x.shape
    H = state0[0].shape[1]
    y = np.zeros((B, T, H), dtype=x.dtype)  # (B, T, H)
    order = range(T - 1, -1, -1) if reverse else range(T)
    caches: List[Any] = [None] * T
    state = state0
    for t in order:
        new, caches[t] = cell.forward(x[:, t], state, *weights)
        if mask is not None:  # rows past their length keep their state and output zero
            m = mask[:, t, None]  # (B, 1)
            new = tuple(np.where(m, n, s) for n, s in zip(new, state))
            y[:, t] = np.where(m, new[0], 0)
        else:
            y[:, t] = new[0]
        state = new
    return y, state, (cell, caches, order, mask, x.shape, weights)


def layer_backward(dy: Array, dstate: Tuple[Optional[Array], ...], cache: tuple
                   ) -> Tuple[Array, Tuple[Array, ...], Params, Array]:
    """BPTT through one layer/direction.

    dy (B, T, H) and dL/d(final state) -> dx (B, T, C), dL/d(initial state), grads keyed by
    ``weight_ih``/``weight_hh``/``bias_ih``/``bias_hh``, and dh (B, T, H) = dL/dh_t, the total
    gradient reaching each step's output (from y_t and from step t+1; zero on padding).
    """
    cell, caches, order, mask, (B, T, C), weights = cache
    H = dy.shape[2]
    dstate = tuple(np.zeros((B, H), dy.dtype) if d is None else d for d in dstate)
    dx = np.zeros((B, T, C), dtype=dy.dtype)
    dh = np.zeros((B, T, H), dtype=dy.dtype)
    grads = {key: np.zeros_like(w) for key, w in zip(WEIGHT_KEYS, weights)}
    for t in reversed(order):
        if mask is not None:  # padding: the carried gradient skips the step unchanged
            m = mask[:, t, None]  # (B, 1)
            skip = tuple(np.where(m, 0, d) for d in dstate)
            dnew = (np.where(m, dstate[0] + dy[:, t], 0),) + tuple(np.where(m, d, 0) for d in dstate[1:])
        else:
            dnew = (dstate[0] + dy[:, t],) + dstate[1:]
        dh[:, t] = dnew[0]
        dx[:, t], dprev, step_grads = cell.backward(dnew, caches[t])
        for key in WEIGHT_KEYS:
            grads[key] += step_grads[key]
        dstate = dprev if mask is None else tuple(p + s for p, s in zip(dprev, skip))
    return dx, dstate, grads, dh


# ---------------------------------------------------------------------------------------------
# stacked layers and both directions


def _unpack(spec: RecurrentSpec, state: Any) -> Tuple[Optional[Array], ...]:
    if state is None:
        return (None,) * spec.cell_spec.n_state
    if spec.cell_spec.n_state == 1:
        if isinstance(state, (tuple, list)):
            raise TypeError(f"{spec.cell} state must be one array h of shape (L*D, B, H)")
        return (state,)
    if not (isinstance(state, (tuple, list)) and len(state) == 2):
        raise TypeError("lstm state must be a tuple (h, c) of arrays of shape (L*D, B, H)")
    return tuple(state)


def _pack(spec: RecurrentSpec, parts: Tuple[Array, ...]) -> State:
    return parts[0] if spec.cell_spec.n_state == 1 else tuple(parts)


def recurrent_forward(spec: RecurrentSpec, params: Params, x: Array, state: Optional[State] = None,
                      lengths: Optional[Array] = None) -> Tuple[Array, State, tuple]:
    """Stacked (bi)directional encoder. x (B, T, C) -> y (B, T, D*H), final state, cache.

    ``state`` (initial) defaults to zeros; ``lengths`` (B,) are the true lengths of the rows.
    """
    B, T, C = x.shape
    if C != spec.input_size:
        raise ValueError(f"expected {spec.input_size} input features, got {C}")
    L, D, cell = spec.num_layers, spec.num_directions, spec.cell_spec
    mask = length_mask(lengths, B, T)
    parts0 = tuple(np.zeros((L * D, B, spec.hidden_size), x.dtype) if p is None else p
                   for p in _unpack(spec, state))
    final: List[List[Array]] = [[None] * (L * D) for _ in parts0]  # [part][layer*D + direction]
    layer_caches = []
    inp = x
    for k in range(L):
        outs = []
        for d in range(D):
            idx = k * D + d
            weights = tuple(params[n] for n in param_names(k, d == 1))
            y_kd, state_kd, c = layer_forward(cell, inp, tuple(p[idx] for p in parts0), weights,
                                              reverse=(d == 1), mask=mask)
            for part, s in zip(final, state_kd):
                part[idx] = s
            outs.append(y_kd)  # (B, T, H)
            layer_caches.append(c)
        inp = outs[0] if D == 1 else np.concatenate(outs, axis=2)  # (B, T, D*H)
    final_state = _pack(spec, tuple(np.stack(p) for p in final))  # (L*D, B, H) each
    return inp, final_state, (spec, layer_caches, x.shape, x.dtype)


def recurrent_backward(dy: Optional[Array], dstate: Optional[State], cache: tuple
                       ) -> Tuple[Array, State, Params, Array]:
    """BPTT through the stack.

    dy (B, T, D*H) or None, dL/d(final state) (h, or (dh, dc) with None allowed, or None)
    -> dx (B, T, C), dL/d(initial state) (same structure as the state), grads (parameter
    name -> array, PyTorch names) and dh (L*D, B, T, H), dL/dh_t for every layer/direction.
    """
    spec, layer_caches, (B, T, _), dtype = cache
    L, D, H = spec.num_layers, spec.num_directions, spec.hidden_size
    if dy is None:
        dy = np.zeros((B, T, D * H), dtype)
    parts = _unpack(spec, dstate)
    dparts0 = [np.zeros((L * D, B, H), dtype) for _ in parts]
    dh_all = np.zeros((L * D, B, T, H), dtype)
    grads: Params = {}
    dout = dy  # (B, T, D*H): gradient reaching the outputs of layer k
    for k in range(L - 1, -1, -1):
        dinp = None
        for d in range(D):
            idx = k * D + d
            dfinal = tuple(None if p is None else p[idx] for p in parts)
            dx_kd, d0, g, dh = layer_backward(dout[:, :, d * H:(d + 1) * H], dfinal, layer_caches[idx])
            for n, key in zip(param_names(k, d == 1), WEIGHT_KEYS):
                grads[n] = g[key]
            for dp, s in zip(dparts0, d0):
                dp[idx] = s
            dh_all[idx] = dh
            dinp = dx_kd if dinp is None else dinp + dx_kd
        dout = dinp
    grads = {n: grads[n] for n in spec.names()}  # PyTorch's order
    return dout, _pack(spec, tuple(dparts0)), grads, dh_all
