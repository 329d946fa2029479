"""Train state <-> (tensors, JSON) for exact resume: optimizer, scheduler, RNGs, carry.

Everything a run needs to continue bit for bit is split into safetensors-compatible
arrays and a JSON document; nothing is pickled.
"""

from __future__ import annotations

import random
from typing import Any, Dict, Tuple

import numpy as np
import torch

from ..layers import map_state


def _to_np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().contiguous().numpy().copy()


def optimizer_to_flat(opt: torch.optim.Optimizer, names: Dict[int, str]
                      ) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
    """AdamW moments keyed by parameter *name* (``optim.<name>.exp_avg``), so that both
    engines (and future versions with other parameter orders) read the same layout.
    ``names`` maps ``id(parameter)`` to its name in the model's state dict."""
    tensors: Dict[str, np.ndarray] = {}
    for group in opt.param_groups:
        for p in group["params"]:
            for k, v in opt.state.get(p, {}).items():
                if isinstance(v, torch.Tensor):
                    tensors[f"optim.{names[id(p)]}.{k}"] = _to_np(v)
    return tensors, {"kind": "adamw"}


def optimizer_from_flat(opt: torch.optim.Optimizer, names: Dict[int, str], tensors: Dict[str, np.ndarray]) -> None:
    """Load moments written by :func:`optimizer_to_flat` (either engine) into ``opt``."""
    for group in opt.param_groups:
        for p in group["params"]:
            name = names[id(p)]
            st = {}
            for k in ("exp_avg", "exp_avg_sq", "step"):
                key = f"optim.{name}.{k}"
                if key in tensors:
                    t = torch.from_numpy(np.array(tensors[key]))
                    st[k] = t.to(torch.float32) if k == "step" else t.to(p.dtype).to(p.device)
            if st:
                opt.state[p] = st


def set_schedule_position(opt: torch.optim.Optimizer, scheduler, step: int, factor: float) -> None:
    """Put a LambdaLR (stateless apart from its position) at ``step`` optimizer steps."""
    scheduler.last_epoch = step
    lrs = [base * factor for base in scheduler.base_lrs]
    for group, lr in zip(opt.param_groups, lrs):
        group["lr"] = lr
    scheduler._last_lr = lrs


def rng_to_flat() -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
    np_state = np.random.get_state()
    py_state = random.getstate()
    tensors = {"rng.torch": _to_np(torch.get_rng_state()), "rng.numpy": np.asarray(np_state[1])}
    meta = {"numpy": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
            "python": [py_state[0], list(py_state[1]), py_state[2]]}
    return tensors, meta


def rng_from_flat(tensors: Dict[str, np.ndarray], meta: Dict[str, Any]) -> None:
    torch.set_rng_state(torch.from_numpy(np.array(tensors["rng.torch"])))
    n = meta["numpy"]
    np.random.set_state((n[0], np.array(tensors["rng.numpy"]), n[1], n[2], n[3]))
    p = meta["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))


def carry_to_flat(carry: Any) -> Tuple[Dict[str, np.ndarray], Any]:
    """A carried encoder state (tensor, tuple of tensors or None) -> arrays + structure."""
    tensors: Dict[str, np.ndarray] = {}
    counter = [0]

    def put(t: torch.Tensor) -> str:
        key = f"carry.{counter[0]}"
        counter[0] += 1
        tensors[key] = _to_np(t)
        return key

    if carry is None:
        return tensors, None
    if isinstance(carry, torch.Tensor):
        return tensors, put(carry)
    return tensors, [put(t) for t in carry]


def carry_from_flat(tensors: Dict[str, np.ndarray], structure: Any, device=None) -> Any:
    get = lambda k: torch.from_numpy(np.array(tensors[k])).to(device)  # noqa: E731
    if structure is None:
        return None
    if isinstance(structure, str):
        return get(structure)
    return tuple(get(k) for k in structure)


__all__ = ["optimizer_to_flat", "optimizer_from_flat", "set_schedule_position", "rng_to_flat", "rng_from_flat",
           "carry_to_flat", "carry_from_flat", "map_state"]
