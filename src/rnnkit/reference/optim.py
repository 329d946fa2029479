"""Gradient clipping and optimizers with ``torch.optim`` semantics, on dicts of NumPy arrays.

Clipping (``torch.nn.utils.clip_grad_norm_`` / ``clip_grad_value_``), in place:

    by global norm:  n = ‖(‖g_1‖, ‖g_2‖, ...)‖;   g ← g · min(1, max_norm / (n + 1e-6))
    by value:        g ← clip(g, -v, v)

Optimizers (update ``params`` in place; ``step(grads)`` with grads keyed like params), where
g = grad + weight_decay · p and t counts steps from 1:

    SGD      b ← g (first step), then b ← μ b + (1 - dampening) g;
             d = g + μ b (Nesterov) or b (μ > 0) or g;                    p ← p - lr d
    Adagrad  s ← s + g²;   p ← p - lr / (1 + (t-1) lr_decay) · g / (√s + eps)
    Adam     m ← β1 m + (1-β1) g;   v ← β2 v + (1-β2) g²      (Kingma & Ba 2015)
             p ← p - lr / (1-β1^t) · m / (√v / √(1-β2^t) + eps)     (AMSGrad: v → max of all v)

AdamW (Loshchilov & Hutter 2019) decouples the weight decay from the gradient, as
``torch.optim.AdamW``: p ← p (1 - lr·wd) before the Adam update, for the parameters in
``decay`` only (rnnkit decays matrices, not biases).

``state_dict()`` is a flat dict of arrays (``step`` plus one buffer per parameter and kind,
e.g. ``exp_avg.weight_ih_l0``), so it can be written with safetensors and loaded back.
"""

from __future__ import annotations

import abc
import math
from typing import Dict, Iterable, Mapping, Union

import numpy as np

from .base import Params

Grads = Union[Mapping[str, np.ndarray], Iterable[np.ndarray]]


def _arrays(grads: Grads):
    return list(grads.values()) if isinstance(grads, Mapping) else list(grads)


def clip_grad_norm(grads: Grads, max_norm: float, norm_type: float = 2.0) -> float:
    """Scale all gradients in place so that their global norm is at most ``max_norm``.

    Returns the total norm before clipping (as ``torch.nn.utils.clip_grad_norm_``).
    """
    arrays = _arrays(grads)
    if not arrays:
        return 0.0
    if norm_type == math.inf:
        total = max(float(np.abs(g).max()) if g.size else 0.0 for g in arrays)
    else:
        norms = [np.sum(np.abs(g) ** norm_type) ** (1.0 / norm_type) for g in arrays]
        total = float(np.sum(np.array(norms) ** norm_type) ** (1.0 / norm_type))
    coef = min(max_norm / (total + 1e-6), 1.0)
    for g in arrays:
        g *= np.asarray(coef, dtype=g.dtype)
    return total


def clip_grad_value(grads: Grads, clip_value: float) -> None:
    """Clamp every gradient element into [-clip_value, clip_value], in place."""
    for g in _arrays(grads):
        np.clip(g, -clip_value, clip_value, out=g)


class Optimizer(abc.ABC):
    """Holds the parameter dict it updates in place and per-parameter buffers; subclasses
    define the update rule in ``_update``."""

    buffer_kinds: tuple = ()

    def __init__(self, params: Params) -> None:
        self.params = params
        self.t = 0  # steps taken
        self.state: Dict[str, Dict[str, np.ndarray]] = {kind: {} for kind in self.buffer_kinds}

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """One update of every parameter that has a gradient in ``grads``."""
        self.t += 1
        for name, g in grads.items():
            p = self.params[name]
            if self.weight_decay:
                g = g + self.weight_decay * p
            self._update(name, p, g)

    @abc.abstractmethod
    def _update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        """Update parameter ``p`` (in place) from its gradient ``g``."""

    def state_dict(self) -> Dict[str, np.ndarray]:
        out = {"step": np.array(self.t, dtype=np.int64)}
        for kind, bufs in self.state.items():
            out.update({f"{kind}.{name}": b for name, b in bufs.items()})
        return out

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        self.t = int(state["step"])
        self.state = {kind: {} for kind in self.buffer_kinds}
        for key, value in state.items():
            if key != "step":
                kind, name = key.split(".", 1)
                self.state[kind][name] = np.array(value, dtype=self.params[name].dtype)


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``."""

    buffer_kinds = ("momentum_buffer",)

    def __init__(self, params: Params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params)
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov

    def _update(self, name, p, g):
        if self.momentum:
            bufs = self.state["momentum_buffer"]
            if name not in bufs:
                bufs[name] = g.copy()
            else:
                bufs[name] *= self.momentum
                bufs[name] += (1 - self.dampening) * g
            g = g + self.momentum * bufs[name] if self.nesterov else bufs[name]
        p -= self.lr * g


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011), as ``torch.optim.Adagrad``."""

    buffer_kinds = ("sum",)

    def __init__(self, params: Params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10) -> None:
        super().__init__(params)
        self.lr, self.lr_decay, self.weight_decay, self.eps = lr, lr_decay, weight_decay, eps
        for name, p in params.items():
            self.state["sum"][name] = np.full_like(p, initial_accumulator_value)

    def _update(self, name, p, g):
        clr = self.lr / (1 + (self.t - 1) * self.lr_decay)
        s = self.state["sum"][name]
        s += g * g
        p -= clr * (g / (np.sqrt(s) + self.eps))


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), optionally AMSGrad, as ``torch.optim.Adam``."""

    buffer_kinds = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(self, params: Params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        super().__init__(params)
        self.lr, (self.beta1, self.beta2), self.eps = lr, betas, eps
        self.weight_decay, self.amsgrad = weight_decay, amsgrad

    def _update(self, name, p, g):
        m = self.state["exp_avg"].setdefault(name, np.zeros_like(p))
        v = self.state["exp_avg_sq"].setdefault(name, np.zeros_like(p))
        m += (1 - self.beta1) * (g - m)  # torch: exp_avg.lerp_(grad, 1 - beta1)
        v *= self.beta2
        v += (1 - self.beta2) * (g * g)
        if self.amsgrad:
            vmax = self.state["max_exp_avg_sq"].setdefault(name, np.zeros_like(p))
            np.maximum(vmax, v, out=vmax)
            v = vmax
        step_size = self.lr / (1 - self.beta1 ** self.t)
        denom = np.sqrt(v) / math.sqrt(1 - self.beta2 ** self.t) + self.eps
        p -= step_size * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay on the named parameters, as ``torch.optim.AdamW``."""

    def __init__(self, params: Params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, decay: Iterable[str] = ()) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=0.0)
        self.decoupled_weight_decay = weight_decay
        self.decay = set(decay)

    def _update(self, name, p, g):
        if self.decoupled_weight_decay and name in self.decay:
            p *= np.asarray(1 - self.lr * self.decoupled_weight_decay, dtype=p.dtype)
        super()._update(name, p, g)
