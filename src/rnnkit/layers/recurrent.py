"""Shared plumbing of the recurrent encoders: state packing, lengths, stacking, directions.

The architectures themselves live one per file (``rnn.py``, ``lstm.py``, ``gru.py``): each
defines its cell equations and a :class:`CellSpec`. This module runs a cell spec two ways:

* :class:`FusedRecurrent` *is* a ``torch.nn.RNN/LSTM/GRU`` (a subclass, so the oneDNN/cuDNN
  kernels run and the parameter names are PyTorch's own) under the encoder contract, packing
  variable-length batches so padding never reaches the state;
* :class:`HandRecurrent` runs the readable cell equations step by step in Python, with the
  very same parameter names (``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``,
  ``bias_hh_l{k}``, ``*_reverse``), so ``load_state_dict`` moves weights between the two.

Both give identical outputs, states and gradients (tests/layers/test_parity.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .base import Encoder, State, check_input, check_step_input

# A cell maps (input projection gi = W_ih x + b_ih, per-layer state tuple, W_hh, b_hh)
# to the new per-layer state tuple; its first element is the output h.
CellFn = Callable[[Tensor, Tuple[Tensor, ...], Tensor, Tensor], Tuple[Tensor, ...]]


@dataclass(frozen=True)
class CellSpec:
    """What distinguishes one recurrent architecture from another."""

    name: str
    gates: int  # rows of W_ih / W_hh per hidden unit (RNN 1, LSTM 4, GRU 3)
    n_state: int  # tensors in the state (LSTM: h, c; RNN/GRU: h)
    cell: CellFn
    torch_module: type  # the fused torch.nn class (nn.RNN, nn.LSTM, nn.GRU)
    torch_kwargs: Tuple[Tuple[str, object], ...] = ()  # e.g. (("nonlinearity", "relu"),)


def pack_state(spec: CellSpec, parts: Sequence[Tensor]) -> State:
    """Internal tuple of (L*D, B, H) tensors -> public state (``h`` or ``(h, c)``)."""
    return parts[0] if spec.n_state == 1 else tuple(parts)


def unpack_state(spec: CellSpec, state: State) -> Tuple[Tensor, ...]:
    if spec.n_state == 1:
        if not isinstance(state, Tensor):
            raise TypeError(f"{spec.name} state must be a tensor h of shape (L*D, B, H)")
        return (state,)
    if not (isinstance(state, (tuple, list)) and len(state) == spec.n_state):
        raise TypeError(f"{spec.name} state must be a tuple of {spec.n_state} tensors")
    return tuple(state)


def param_names(layer: int, reverse: bool) -> Tuple[str, str, str, str]:
    sfx = f"_l{layer}" + ("_reverse" if reverse else "")
    return (f"weight_ih{sfx}", f"weight_hh{sfx}", f"bias_ih{sfx}", f"bias_hh{sfx}")


def _check_sizes(input_size: int, hidden_size: int, num_layers: int, dropout: float) -> None:
    if input_size < 1 or hidden_size < 1 or num_layers < 1:
        raise ValueError("input_size, hidden_size and num_layers must be >= 1")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout}")


class _Recurrent(Encoder):
    """The ``step``, state helpers and sizes shared by the fused and the hand-written runner.

    Subclasses set ``input_size``, ``hidden_size``, ``num_layers``, ``dropout``,
    ``bidirectional`` (PyTorch's own attribute names) and call :meth:`_set_sizes`.
    """

    spec: CellSpec

    def _set_sizes(self) -> None:
        self.num_directions = 2 if self.bidirectional else 1
        self.output_size = self.hidden_size * self.num_directions
        self.carries_state = True

    # -- weights -------------------------------------------------------------------------
    def layer_weights(self, layer: int, reverse: bool = False) -> Tuple[Tensor, ...]:
        return tuple(getattr(self, n) for n in param_names(layer, reverse))

    def initial_state(self, batch_size: int, device=None, dtype=None) -> State:
        w = self.layer_weights(0)[0]
        shape = (self.num_layers * self.num_directions, batch_size, self.hidden_size)
        zeros = [w.new_zeros(shape, device=device, dtype=dtype) for _ in range(self.spec.n_state)]
        return pack_state(self.spec, zeros)

    # -- one time step -------------------------------------------------------------------
    def step(self, x_t: Tensor, state: State = None) -> Tuple[Tensor, State]:
        """Advance one time step: x_t (B, C) -> y_t (B, H). Unidirectional only."""
        check_step_input(self, x_t, causal=not self.bidirectional)
        if state is None:
            state = self.initial_state(x_t.shape[0], x_t.device, x_t.dtype)
        parts = unpack_state(self.spec, state)
        new_parts: List[List[Tensor]] = [[] for _ in parts]
        inp = x_t
        for layer in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh = self.layer_weights(layer)
            hx = tuple(p[layer] for p in parts)
            out = self.spec.cell(F.linear(inp, w_ih, b_ih), hx, w_hh, b_hh)
            for i, o in enumerate(out):
                new_parts[i].append(o)
            inp = out[0]
            if layer < self.num_layers - 1 and self.dropout > 0 and self.training:
                inp = F.dropout(inp, self.dropout, True)
        return inp, pack_state(self.spec, [torch.stack(p) for p in new_parts])

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"dropout={self.dropout}, bidirectional={self.bidirectional}"
        )


class FusedRecurrent(_Recurrent):
    """Mixin that puts a torch.nn fused recurrent class under the encoder contract.

    Concrete classes inherit from it *and* from the torch class, e.g.
    ``class LSTM(FusedRecurrent, nn.LSTM)``, so the parameters are the torch module's own.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, dropout=0.0,
                 bidirectional=False) -> None:
        _check_sizes(input_size, hidden_size, num_layers, dropout)
        self.spec.torch_module.__init__(
            self, input_size, hidden_size, num_layers=num_layers,
            dropout=dropout if num_layers > 1 else 0.0,
            bidirectional=bidirectional, batch_first=True, **dict(self.spec.torch_kwargs),
        )
        self.dropout = float(dropout if num_layers > 1 else 0.0)
        self._set_sizes()

    def forward(self, x: Tensor, state: State = None, lengths: Optional[Tensor] = None):
        check_input(x, self.input_size, lengths)
        hx = None if state is None else pack_state(self.spec, unpack_state(self.spec, state))
        torch_forward = self.spec.torch_module.forward
        if lengths is None:
            return torch_forward(self, x, hx)  # y: (B, T, D*H)
        T = x.shape[1]
        packed = pack_padded_sequence(x, lengths.detach().cpu().to(torch.int64),
                                      batch_first=True, enforce_sorted=False)
        y, hx = torch_forward(self, packed, hx)
        y, _ = pad_packed_sequence(y, batch_first=True, total_length=T)  # (B, T, D*H), zeros past lengths
        return y, hx

    def outputs(self, x: Tensor, lengths: Optional[Tensor] = None) -> Tensor:
        """``y`` of a variable-length batch without packing (the final state is not computed).

        torch's CPU kernels run packed sequences on a slow path (a bidirectional LSTM,
        B = 32, T = 300: 3.7 s forward + backward packed, 0.29 s padded, one thread). The
        outputs at real positions need no packing: the forward direction is causal, so the
        padding after a row never reaches them; the backward direction reads each row
        reversed *within its length* (a gather), so it too starts at the row's last real
        step. Each layer and direction is one fused kernel call on the padded batch; the
        padding's outputs are zeroed before the next layer and at the end. Equal to
        ``forward(x, None, lengths)[0]`` (tests/layers/test_contract.py), except that the
        dropout masks between layers are drawn differently. CPU only: on a GPU the packed
        cuDNN call is kept.
        """
        if lengths is None or x.device.type != "cpu":
            # cuDNN keeps all layers in one flat weight buffer and runs packed sequences well;
            # per-layer calls on slices of it would copy the weights every time
            return self(x, None, lengths)[0]
        check_input(x, self.input_size, lengths)
        mask, rev_index = _length_mask_and_reversal(lengths, x.shape[1], x.device)
        mask = mask[:, :, None]  # (B, T, 1)
        inp = x.masked_fill(~mask, 0.0)  # padding is never read for a real output; keep nan/inf out
        for layer in range(self.num_layers):
            ys = []
            for d in range(self.num_directions):
                seq = inp if d == 0 else _gather_time(inp, rev_index)
                y = self._fused_layer(seq, self.layer_weights(layer, reverse=d == 1))
                ys.append(y if d == 0 else _gather_time(y, rev_index))
            inp = (torch.cat(ys, -1) if len(ys) > 1 else ys[0]).masked_fill(~mask, 0.0)
            if layer < self.num_layers - 1 and self.dropout > 0 and self.training:
                inp = F.dropout(inp, self.dropout, True)
        return inp

    def _fused_layer(self, seq: Tensor, weights: Tuple[Tensor, ...]) -> Tensor:
        """One unidirectional layer through torch's fused kernel (the one nn.LSTM/GRU/RNN call)."""
        B, H = seq.shape[0], self.hidden_size
        h0 = seq.new_zeros(1, B, H)
        args = (list(weights), True, 1, 0.0, self.training, False, True)  # biases, layers, dropout, train, bidir, batch_first
        if self.spec.n_state == 2:
            return torch.lstm(seq, (h0, h0), *args)[0]
        if self.spec.name == "gru":
            fn = torch.gru
        else:  # nn.RNN keeps its nonlinearity as an attribute
            fn = torch.rnn_relu if getattr(self, "nonlinearity", "tanh") == "relu" else torch.rnn_tanh
        return fn(seq, h0, *args)[0]


class HandRecurrent(_Recurrent):
    """The same architecture computed by the readable cell, one time step at a time."""

    def __init__(self, input_size, hidden_size, num_layers=1, dropout=0.0,
                 bidirectional=False) -> None:
        _check_sizes(input_size, hidden_size, num_layers, dropout)
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.dropout = float(dropout if num_layers > 1 else 0.0)
        self.bidirectional = bidirectional
        self._set_sizes()
        G = self.spec.gates * hidden_size
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else self.output_size
            for reverse in ([False, True] if bidirectional else [False]):
                w_ih, w_hh, b_ih, b_hh = param_names(layer, reverse)
                self.register_parameter(w_ih, nn.Parameter(torch.empty(G, in_size)))
                self.register_parameter(w_hh, nn.Parameter(torch.empty(G, hidden_size)))
                self.register_parameter(b_ih, nn.Parameter(torch.empty(G)))
                self.register_parameter(b_hh, nn.Parameter(torch.empty(G)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's initialisation: U(-1/sqrt(H), 1/sqrt(H)) for every tensor."""
        bound = self.hidden_size ** -0.5
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _run_direction(self, gi: Tensor, hx: Tuple[Tensor, ...], w_hh: Tensor, b_hh: Tensor,
                       mask: Optional[Tensor]) -> Tuple[Tensor, Tuple[Tensor, ...]]:
        """gi: (B, T, G*H) input projections -> y (B, T, H) and the final per-layer state."""
        outputs = []
        # unbind once: indexing gi[:, t] inside the loop makes backward O(T^2)
        for t, gi_t in enumerate(gi.unbind(1)):
            new = self.spec.cell(gi_t, hx, w_hh, b_hh)
            if mask is None:
                hx = new
                outputs.append(new[0])
            else:
                m = mask[:, t, None]  # (B, 1): keep the old state on padding
                hx = tuple(torch.where(m, n, o) for n, o in zip(new, hx))
                outputs.append(torch.where(m, new[0], torch.zeros_like(new[0])))
        return torch.stack(outputs, 1), hx

    def forward(self, x: Tensor, state: State = None, lengths: Optional[Tensor] = None):
        check_input(x, self.input_size, lengths)
        B, T, _ = x.shape
        if state is None:
            state = self.initial_state(B, x.device, x.dtype)
        parts = unpack_state(self.spec, state)
        mask = rev_index = None
        if lengths is not None:
            mask, rev_index = _length_mask_and_reversal(lengths, T, x.device)
            # zero the padding: its gradient is 0, but 0 * inf/nan in the weight gradient
            # would still be nan (the fused kernel never reads padding at all)
            x = x.masked_fill(~mask[:, :, None], 0.0)
        finals: List[List[Tensor]] = [[] for _ in parts]
        inp = x
        for layer in range(self.num_layers):
            ys = []
            for d in range(self.num_directions):
                w_ih, w_hh, b_ih, b_hh = self.layer_weights(layer, reverse=d == 1)
                k = layer * self.num_directions + d
                seq = inp
                if d == 1:
                    seq = inp.flip(1) if rev_index is None else _gather_time(inp, rev_index)
                gi = F.linear(seq, w_ih, b_ih)  # (B, T, G*H)
                y, hx = self._run_direction(gi, tuple(p[k] for p in parts), w_hh, b_hh, mask)
                if d == 1:
                    y = y.flip(1) if rev_index is None else _gather_time(y, rev_index)
                ys.append(y)
                for i, h in enumerate(hx):
                    finals[i].append(h)
            inp = torch.cat(ys, -1) if len(ys) > 1 else ys[0]  # (B, T, D*H)
            if layer < self.num_layers - 1 and self.dropout > 0 and self.training:
                inp = F.dropout(inp, self.dropout, True)
        return inp, pack_state(self.spec, [torch.stack(f) for f in finals])


def _length_mask_and_reversal(lengths: Tensor, T: int, device) -> Tuple[Tensor, Tensor]:
    """``mask`` (B, T), True on real steps, and ``rev_index`` (B, T): each row reversed inside
    its own length (``lengths[b] - 1 - t``), padding positions left where they are."""
    lengths = lengths.to(device, torch.long)
    t = torch.arange(T, device=device)[None, :]
    mask = t < lengths[:, None]
    return mask, torch.where(mask, lengths[:, None] - 1 - t, t)


def _gather_time(x: Tensor, index: Tensor) -> Tensor:
    """x (B, T, C), index (B, T) -> x[b, index[b, t]]."""
    return x.gather(1, index[:, :, None].expand(-1, -1, x.shape[-1]))
