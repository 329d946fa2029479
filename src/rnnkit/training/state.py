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


def optimizer_to_flat(opt: torch.optim.Optimizer) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
    sd = opt.state_dict()
    tensors: Dict[str, np.ndarray] = {}
    scalars: Dict[str, Dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim.{idx}.{k}"] = _to_np(v)
            else:
                scalars.setdefault(str(idx), {})[k] = v
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def optimizer_from_flat(opt: torch.optim.Optimizer, tensors: Dict[str, np.ndarray], meta: Dict[str, Any]) -> None:
    state: Dict[int, Dict[str, Any]] = {}
    for key, arr in tensors.items():
        if not key.startswith("optim."):
            continue
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = torch.from_numpy(np.array(arr))
    for idx, d in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(d)
    groups = []
    for g in meta["param_groups"]:
        g = dict(g)
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    opt.load_state_dict({"state": state, "param_groups": groups})


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


__all__ = ["optimizer_to_flat", "optimizer_from_flat", "rng_to_flat", "rng_from_flat",
           "carry_to_flat", "carry_from_flat", "map_state"]
