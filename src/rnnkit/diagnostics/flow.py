"""Gradient flow through time, gate saturation and spectral radius of recurrent encoders.

Backpropagation through time multiplies the gradient by one Jacobian per step::

    dL/dh_t = dL/dy_t + (dh_{t+1}/dh_t)^T dL/dh_{t+1}

so ||dL/dh_t|| shrinks or grows geometrically with the distance to the loss (Bengio et al.
1994; Hochreiter 1991; Pascanu et al. 2013). This module measures that quantity, for every
layer, direction and time step, two ways that agree on the same weights:

* :func:`gradient_flow` (torch): the encoder is unrolled step by step with its own weights
  and cell equations (:func:`unroll`), and ``torch.autograd.grad`` gives the total gradient
  reaching each step's hidden state h_t;
* :func:`numpy_gradient_flow`: the NumPy engine's BPTT returns the same ``dh`` directly
  (:func:`rnnkit.reference.recurrent_backward`).

``norms[k, t] = ||dL/dh_t||`` is the Frobenius norm over the batch and hidden units of
layer/direction ``k = layer * D + direction`` (PyTorch's state order). Steps past a row's
length are zero, as in the engine.

:func:`unroll` also records the gates (LSTM input/forget/output, GRU reset/update), from
which :func:`gate_stats` reports saturation fractions (gate < 0.1 or > 0.9, as in Karpathy
et al. 2015, "Visualizing and understanding recurrent networks"). :func:`spectral_radius`
gives max |eigenvalue| of each recurrent weight block W_h*.

Unrolling works for rnnkit's recurrent encoders (fused ``RNN``/``LSTM``/``GRU`` and the
``hand-*`` ones, any depth, bidirectional, variable lengths). Dropout between layers is not
applied (the measurement is of the deterministic network).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..reference import RecurrentSpec, recurrent_backward, recurrent_forward

GATE_NAMES = {"rnn": (), "rnn-relu": (), "lstm": ("input", "forget", "output"), "gru": ("reset", "update")}
BLOCK_NAMES = {"rnn": ("h",), "rnn-relu": ("h",), "lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}
SATURATION_LOW, SATURATION_HIGH = 0.1, 0.9


# ---------------------------------------------------------------------------------------
# which cell an encoder runs, and its weights for the NumPy engine


def cell_name(encoder) -> str:
    """The reference-engine name of an rnnkit recurrent encoder: rnn, rnn-relu, lstm or gru."""
    spec = getattr(encoder, "spec", None)
    if spec is None or not hasattr(encoder, "layer_weights"):
        raise TypeError(f"{type(encoder).__name__} is not a recurrent encoder (rnn/lstm/gru); "
                        "gradient flow per hidden state needs one")
    if spec.name == "rnn":
        return "rnn-relu" if dict(spec.torch_kwargs).get("nonlinearity") == "relu" else "rnn"
    return spec.name


def to_numpy(encoder, dtype=np.float64) -> Tuple[RecurrentSpec, Dict[str, np.ndarray]]:
    """The encoder's spec and weights for :mod:`rnnkit.reference` (a dictionary copy)."""
    cell = cell_name(encoder)
    spec = RecurrentSpec(cell, encoder.input_size, encoder.hidden_size, encoder.num_layers,
                         bool(encoder.bidirectional))
    params = {n: encoder.state_dict()[n].detach().cpu().numpy().astype(dtype) for n in spec.names()}
    return spec, params


# ---------------------------------------------------------------------------------------
# cells that also return their gates (same equations as rnnkit.layers.lstm / gru)


def _lstm_gated(gi: Tensor, hx: Tuple[Tensor, Tensor], w_hh: Tensor, b_hh: Tensor):
    h, c = hx
    i, f, g, o = (gi + F.linear(h, w_hh, b_hh)).chunk(4, dim=-1)  # (B, H) each
    i, f, o = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o)
    c_new = f * c + i * torch.tanh(g)
    return (o * torch.tanh(c_new), c_new), {"input": i, "forget": f, "output": o}


def _gru_gated(gi: Tensor, hx: Tuple[Tensor], w_hh: Tensor, b_hh: Tensor):
    (h,) = hx
    i_r, i_z, i_n = gi.chunk(3, dim=-1)
    h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return ((1 - z) * n + z * h,), {"reset": r, "update": z}


def _gated_cell(encoder) -> Callable:
    name = cell_name(encoder)
    if name == "lstm":
        return _lstm_gated
    if name == "gru":
        return _gru_gated
    cell = encoder.spec.cell
    return lambda gi, hx, w_hh, b_hh: (cell(gi, hx, w_hh, b_hh), {})


@dataclass
class Trace:
    """One unrolled forward pass.

    ``hidden[k][t]``: h_t (B, H) of layer/direction k at time t (original time order), part
    of the autograd graph; ``gates[k][name]``: (B, T, H) gate values; ``mask``: (B, T) real
    steps or None; ``y`` (B, T, D*H) and ``state`` as the encoder returns them.
    """

    y: Tensor
    state: object
    hidden: List[List[Tensor]]
    gates: List[Dict[str, Tensor]] = field(default_factory=list)
    mask: Optional[Tensor] = None


def unroll(encoder, x: Tensor, state=None, lengths: Optional[Tensor] = None) -> Trace:
    """Run a recurrent encoder step by step with its own weights, keeping every h_t and gate.

    Gives the same ``y`` and ``state`` as ``encoder(x, state, lengths)`` (tested), padding
    handled as packed sequences: steps past a row's length leave the state unchanged and
    output zeros.
    """
    from ..layers.base import check_input
    from ..layers.recurrent import pack_state, unpack_state

    check_input(x, encoder.input_size, lengths)
    cell = _gated_cell(encoder)
    B, T, _ = x.shape
    D, L = encoder.num_directions, encoder.num_layers
    if state is None:
        state = encoder.initial_state(B, x.device, x.dtype)
    parts = unpack_state(encoder.spec, state)
    mask = None
    if lengths is not None:
        mask = torch.arange(T, device=x.device)[None, :] < lengths.to(x.device, torch.long)[:, None]  # (B, T)
        x = x.masked_fill(~mask[:, :, None], 0.0)
    hidden: List[List[Tensor]] = []
    gates: List[Dict[str, Tensor]] = []
    finals: List[List[Tensor]] = [[] for _ in parts]
    inp = x
    for layer in range(L):
        ys = []
        for d in range(D):
            k = layer * D + d
            w_ih, w_hh, b_ih, b_hh = encoder.layer_weights(layer, reverse=d == 1)
            gi = F.linear(inp, w_ih, b_ih).unbind(1)  # T x (B, G*H)
            hx = tuple(p[k] for p in parts)
            hs: List[Optional[Tensor]] = [None] * T
            outs: List[Optional[Tensor]] = [None] * T
            gk: Dict[str, List[Optional[Tensor]]] = {}
            for t in (range(T - 1, -1, -1) if d == 1 else range(T)):
                new, g = cell(gi[t], hx, w_hh, b_hh)
                hs[t] = new[0]
                for name, v in g.items():
                    gk.setdefault(name, [None] * T)[t] = v
                if mask is None:
                    hx, outs[t] = new, new[0]
                else:
                    m = mask[:, t, None]  # (B, 1): padding keeps the state, outputs zero
                    hx = tuple(torch.where(m, n, o) for n, o in zip(new, hx))
                    outs[t] = torch.where(m, new[0], torch.zeros_like(new[0]))
            hidden.append(hs)
            gates.append({name: torch.stack(v, 1) for name, v in gk.items()})  # (B, T, H)
            ys.append(torch.stack(outs, 1))  # (B, T, H)
            for i, h in enumerate(hx):
                finals[i].append(h)
        inp = torch.cat(ys, -1) if D > 1 else ys[0]  # (B, T, D*H)
    return Trace(inp, pack_state(encoder.spec, [torch.stack(f) for f in finals]), hidden, gates, mask)


# ---------------------------------------------------------------------------------------
# gradient flow


@dataclass
class Flow:
    """``norms`` (L*D, T): ||dL/dh_t|| per layer/direction and step; ``loss`` the scalar;
    ``gates``: :func:`gate_stats` of the same pass when asked for."""

    norms: np.ndarray
    loss: float
    gates: Optional[Dict[str, Dict[str, Dict[str, float]]]] = None

    def steps_back(self, k: int = -1) -> np.ndarray:
        """Norms of layer/direction ``k`` indexed by distance from the last step (0 = last)."""
        return self.norms[k][::-1]

    def to_dict(self) -> Dict[str, object]:
        return {"loss": self.loss, "norms": self.norms.tolist()}


def gradient_flow(encoder, x: Tensor, loss_fn: Callable[[Tensor], Tensor], state=None,
                  lengths: Optional[Tensor] = None, gates: bool = False) -> Flow:
    """||dL/dh_t|| for every layer/direction and step, by autograd on the hidden states.

    ``loss_fn(y)`` maps the encoder output (B, T, D*H) to a scalar (any head and loss).
    Parameter ``.grad`` fields are not touched (``torch.autograd.grad`` on the states only).
    ``gates=True`` also summarises the gates of the same pass (see :func:`gate_stats`).
    """
    with torch.enable_grad():
        trace = unroll(encoder, x, state, lengths)
        loss = loss_fn(trace.y)
        flat = [h for hs in trace.hidden for h in hs]
        grads = torch.autograd.grad(loss, flat, allow_unused=True)
    T = x.shape[1]
    norms = np.zeros((len(trace.hidden), T))
    for i, g in enumerate(grads):
        if g is not None:
            if trace.mask is not None:
                g = g * trace.mask[:, i % T, None]
            norms[i // T, i % T] = float(torch.linalg.vector_norm(g.double()))
    summary = _gate_summary(trace, direction_names(encoder)) if gates else None
    return Flow(norms, float(loss.detach()), summary)


def numpy_gradient_flow(spec: RecurrentSpec, params: Dict[str, np.ndarray], x: np.ndarray,
                        dy: np.ndarray, state=None, lengths: Optional[np.ndarray] = None,
                        dstate=None) -> Flow:
    """The same norms from the NumPy engine's BPTT, for the loss whose dL/dy is ``dy``."""
    _, _, cache = recurrent_forward(spec, params, x, state, lengths)
    _, _, _, dh = recurrent_backward(dy, dstate, cache)  # (L*D, B, T, H)
    return Flow(np.sqrt((dh.astype(np.float64) ** 2).sum(axis=(1, 3))), float("nan"))


def output_gradient(encoder, x: Tensor, loss_fn: Callable[[Tensor], Tensor], state=None,
                    lengths: Optional[Tensor] = None) -> np.ndarray:
    """dL/dy (B, T, D*H) of ``loss_fn`` at the encoder's output: the ``dy`` the engine needs."""
    with torch.enable_grad():
        y, _ = encoder(x, state, lengths)
        y = y.detach().requires_grad_(True)
        (dy,) = torch.autograd.grad(loss_fn(y), y)
    return dy.detach().cpu().double().numpy()


# ---------------------------------------------------------------------------------------
# gates and spectra


def direction_names(encoder) -> List[str]:
    """``l0``, ``l0_reverse``, ``l1``, ...: the labels of k = layer * D + direction."""
    D = getattr(encoder, "num_directions", 1)
    return [f"l{k // D}" + ("_reverse" if k % D else "") for k in range(encoder.num_layers * D)]


@torch.no_grad()
def gate_stats(encoder, x: Tensor, state=None, lengths: Optional[Tensor] = None,
               low: float = SATURATION_LOW, high: float = SATURATION_HIGH) -> Dict[str, Dict[str, Dict[str, float]]]:
    """Per layer/direction and gate: mean value and the fractions below ``low`` / above ``high``.

    Only real steps count (padding is excluded). Empty for the Elman RNN (no gates).
    """
    return _gate_summary(unroll(encoder, x, state, lengths), direction_names(encoder), low, high)


@torch.no_grad()
def _gate_summary(trace: Trace, labels: Sequence[str], low: float = SATURATION_LOW,
                  high: float = SATURATION_HIGH) -> Dict[str, Dict[str, Dict[str, float]]]:
    out: Dict[str, Dict[str, Dict[str, float]]] = {}
    for label, gk in zip(labels, trace.gates):
        stats = {}
        for name, v in gk.items():  # (B, T, H)
            if trace.mask is not None:
                v = v[trace.mask]  # (N, H) real steps only
            stats[name] = {"mean": float(v.mean()), "low": float((v < low).float().mean()),
                           "high": float((v > high).float().mean())}
        if stats:
            out[label] = stats
    return out


@torch.no_grad()
def spectral_radius(encoder) -> Dict[str, Dict[str, float]]:
    """max |eigenvalue| of every recurrent block W_h* (H, H), per layer/direction.

    Blocks: ``h`` for the Elman RNN; i, f, g, o for the LSTM; r, z, n for the GRU.
    """
    name = cell_name(encoder)
    blocks = BLOCK_NAMES[name]
    out: Dict[str, Dict[str, float]] = {}
    D = encoder.num_directions
    for k, label in enumerate(direction_names(encoder)):
        w_hh = encoder.layer_weights(k // D, reverse=k % D == 1)[1].detach().double().cpu()
        H = w_hh.shape[1]
        out[label] = {b: float(torch.linalg.eigvals(w_hh[j * H:(j + 1) * H]).abs().max())
                      for j, b in enumerate(blocks)}
    return out


@torch.no_grad()
def scale_spectral_radius(weight: Tensor, radius: float) -> Tensor:
    """Rescale a square recurrent weight in place so that its spectral radius is ``radius``."""
    current = float(torch.linalg.eigvals(weight.detach().double().cpu()).abs().max())
    weight.mul_(radius / current)
    return weight


# ---------------------------------------------------------------------------------------
# gradient norms and clipping


def grad_norms(named_parameters: Sequence[Tuple[str, Tensor]]) -> Dict[str, float]:
    """L2 norm of each parameter's ``.grad`` (parameters without a gradient are left out)."""
    named = [(n, p.grad) for n, p in named_parameters if p.grad is not None]
    if not named:
        return {}
    norms = torch._foreach_norm([g.detach() for _, g in named])
    return {n: float(v) for (n, _), v in zip(named, norms)}


def total_norm(norms: Dict[str, float]) -> float:
    """Global L2 norm from per-parameter norms (what ``clip_grad_norm_`` compares)."""
    return float(np.sqrt(sum(v * v for v in norms.values())))


@dataclass
class ClipResult:
    """Gradient norms before and after clipping one step, and whether clipping changed them."""

    before: Dict[str, float]
    after: Dict[str, float]
    total_before: float
    total_after: float
    fired: bool


def clip_and_measure(named_parameters: Sequence[Tuple[str, Tensor]], clip_norm: Optional[float] = None,
                     clip_value: Optional[float] = None) -> ClipResult:
    """Clip as the trainer does (``clip_value`` wins over ``clip_norm``), measuring both sides.

    ``fired`` is true when clipping changed any gradient: the global norm exceeded
    ``clip_norm``, or some element exceeded ``clip_value`` in magnitude.
    """
    named = [(n, p) for n, p in named_parameters if p.grad is not None]
    before = grad_norms(named)
    params = [p for _, p in named]
    fired = False
    if clip_value is not None:
        fired = any(bool((p.grad.abs() > clip_value).any()) for p in params)
        torch.nn.utils.clip_grad_value_(params, clip_value)
    elif clip_norm is not None:
        fired = total_norm(before) > clip_norm
        torch.nn.utils.clip_grad_norm_(params, clip_norm)
    after = grad_norms(named) if fired else dict(before)
    return ClipResult(before, after, total_norm(before), total_norm(after), fired)
