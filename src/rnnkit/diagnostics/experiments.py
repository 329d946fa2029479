"""The experiments behind ``rnnkit diagnose``: vanishing and exploding gradients made visible.

**gradients** (:func:`gradients_experiment`). For each cell, an encoder with PyTorch's
standard initialisation (every weight and bias ~ U(-1/√H, 1/√H); the LSTM's forget-gate
bias set to 1) and a linear head read the adding problem (x_t = (u_t, marker_t), T steps);
the loss is the squared error of the prediction at the *last* step only. On a fixed probe
batch, ||dL/dh_t|| is measured for every t at initialisation and again after a short
training run (Adam, norm clipping 1.0), so the plot shows how far back the loss reaches.
With T = 200 and H = 64 the tanh RNN's gradient 60 steps back is many orders of magnitude
below the LSTM's (tests/diagnostics assert >= 1e6x). The NumPy engine recomputes the
initial curve from its own BPTT on the same weights: ``numpy_max_rel_diff`` reports the
agreement.

**exploding** (:func:`exploding_experiment`). A tanh RNN whose recurrent weight W_hh is
rescaled to spectral radius ``radius`` > 1 is trained on the adding problem with plain SGD
three times from the same initialisation: without clipping, with global-norm clipping and
with value clipping. Plain SGD makes the step proportional to the gradient, so a gradient
spike becomes a jump in the weights: without clipping the loss blows up (or goes
non-finite), with clipping training stays stable. Per step: the loss, the global gradient
norm before and after clipping, and whether clipping fired.

**checkpoint** (:func:`checkpoint_flow`). ||dL/dh_t|| of a trained model on real data
(``rnnkit diagnose gradients CKPT --data ...``): charlm checkpoints read windows of text
(:data:`PROBES`); the other tasks' probes come from their training recipes' validation
batches (``rnnkit.training.probe``, passed in as ``load_probe``: this layer never imports
training).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.memory_tasks import ADDING_BASELINE, adding_problem
from ..layers import build_encoder
from .flow import (cell_name, clip_and_measure, gate_stats, gradient_flow, numpy_gradient_flow,
                   output_gradient, scale_spectral_radius, spectral_radius, to_numpy)

INIT_NOTE = ("init: PyTorch default, all weights and biases ~ U(-1/sqrt(H), 1/sqrt(H)); "
             "LSTM forget-gate bias 1")


class LastStepRegressor(nn.Module):
    """Encoder + linear head on the last step: the adding problem's model."""

    def __init__(self, cell: str, input_size: int, hidden: int) -> None:
        super().__init__()
        self.encoder = build_encoder(cell, input_size, hidden)
        self.head = nn.Linear(self.encoder.output_size, 1)

    def loss_fn(self, target: Tensor) -> Callable[[Tensor], Tensor]:
        """y (B, T, H) -> MSE of the prediction at the last step."""
        return lambda y: F.mse_loss(self.head(y[:, -1]).squeeze(-1), target)

    def forward(self, x: Tensor, target: Tensor) -> Tensor:
        y, _ = self.encoder(x)  # (B, T, H)
        return self.loss_fn(target)(y)


def _flow_summary(norms: np.ndarray, lag: int) -> Dict[str, Any]:
    top = norms[-1]
    return {"norms": top.tolist(), "last": float(top[-1]),
            "lag": float(top[-1 - lag]) if lag < len(top) else None}


def gradients_experiment(cells: Sequence[str] = ("rnn", "lstm", "gru"), seq_len: int = 200, hidden: int = 64,
                         batch_size: int = 32, train_steps: int = 300, lr: float = 3e-3, lag: int = 60,
                         seed: int = 0, numpy_check: bool = True,
                         log: Optional[Callable[[str], None]] = None) -> Dict[str, Any]:
    """||dL/dh_t|| against t at initialisation and after ``train_steps`` of training."""
    if lag >= seq_len:
        raise ValueError(f"--lag ({lag}) must be smaller than --seq-len ({seq_len})")
    probe_x, probe_y = (torch.from_numpy(a) for a in adding_problem(batch_size, seq_len, np.random.default_rng(seed + 1)))
    out: Dict[str, Any] = {"setup": {"task": "adding problem, loss on the last step (MSE)", "seq_len": seq_len,
                                     "hidden": hidden, "batch_size": batch_size, "train_steps": train_steps,
                                     "lr": lr, "lag": lag, "seed": seed, "init": INIT_NOTE,
                                     "norm": "||dL/dh_t||, Frobenius over batch and units, top layer"},
                           "cells": {}}
    for cell in cells:
        torch.manual_seed(seed)
        model = LastStepRegressor(cell, 2, hidden)
        enc = model.encoder
        loss_fn = model.loss_fn(probe_y)
        init = gradient_flow(enc, probe_x, loss_fn)
        rec: Dict[str, Any] = {"params": sum(p.numel() for p in model.parameters()),
                               "init": {**_flow_summary(init.norms, lag), "loss": init.loss,
                                        "spectral_radius": spectral_radius(enc),
                                        "gates": gate_stats(enc, probe_x)}}
        if numpy_check:
            spec, params = to_numpy(enc)
            dy = output_gradient(enc.double(), probe_x.double(), lambda y: model.double().loss_fn(probe_y.double())(y))
            ref = numpy_gradient_flow(spec, params, probe_x.double().numpy(), dy)
            exact = gradient_flow(enc, probe_x.double(), model.loss_fn(probe_y.double()))
            model.float()
            rec["numpy_max_rel_diff"] = float(np.max(np.abs(exact.norms - ref.norms) / np.maximum(ref.norms, 1e-300)))
        curve: List[Tuple[int, float]] = []
        if train_steps:
            opt = torch.optim.Adam(model.parameters(), lr=lr)
            rng = np.random.default_rng(seed + 2)
            for step in range(1, train_steps + 1):
                x, y = (torch.from_numpy(a) for a in adding_problem(batch_size, seq_len, rng))
                loss = model(x, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                curve.append((step, loss.item()))
            trained = gradient_flow(enc, probe_x, model.loss_fn(probe_y))
            rec["trained"] = {**_flow_summary(trained.norms, lag), "loss": trained.loss,
                              "spectral_radius": spectral_radius(enc), "gates": gate_stats(enc, probe_x)}
        rec["train_loss"] = curve
        out["cells"][cell] = rec
        if log:
            msg = f"{cell}: ||dL/dh|| {lag} steps back at init {rec['init']['lag']:.3g}"
            if "trained" in rec:
                msg += f", after {train_steps} steps {rec['trained']['lag']:.3g} (probe loss {rec['trained']['loss']:.4f}, baseline {ADDING_BASELINE:.3f})"
            log(msg)
    c = out["cells"]
    if "lstm" in c and "rnn" in c and c["rnn"]["init"]["lag"]:
        out["lstm_over_rnn_at_lag_init"] = c["lstm"]["init"]["lag"] / c["rnn"]["init"]["lag"]
    return out


def plot_gradients(result: Dict[str, Any], path, title: str = "") -> str:
    """log10 ||dL/dh_t|| against steps back from the loss; one panel per phase."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = result["cells"]
    phases = [p for p in ("init", "trained") if any(p in r for r in cells.values())]
    fig, axes = plt.subplots(1, len(phases), figsize=(6 * len(phases), 4.2), squeeze=False, sharey=True)
    setup = result["setup"]
    for ax, phase in zip(axes[0], phases):
        for name, rec in cells.items():
            if phase not in rec:
                continue
            norms = np.asarray(rec[phase]["norms"])[::-1]  # index = steps back
            with np.errstate(divide="ignore"):
                ax.plot(np.arange(len(norms)), np.log10(norms), label=name)
        if setup.get("lag") is not None:
            ax.axvline(setup["lag"], color="gray", lw=0.8, ls=":")
        label = "at initialisation" if phase == "init" else f"after {setup.get('train_steps')} training steps"
        ax.set_title(label)
        ax.set_xlabel("steps back from the loss (t = T-1 - k)")
        ax.set_ylabel("log10 ||dL/dh_t||")
        ax.legend()
    fig.suptitle((title or f"gradient flow, {setup.get('task')}, T={setup.get('seq_len')}, H={setup.get('hidden')}")
                 + "\n" + setup.get("init", ""), fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path) -> str:
    import matplotlib.pyplot as plt
    from pathlib import Path

    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return str(path)


# ---------------------------------------------------------------------------------------
# exploding gradients


def exploding_experiment(cell: str = "rnn", radius: float = 2.0, seq_len: int = 50, hidden: int = 64,
                         batch_size: int = 32, steps: int = 200, lr: float = 0.05,
                         clip_norm: float = 1.0, clip_value: float = 0.05, seed: int = 0,
                         diverge_factor: float = 2.0) -> Dict[str, Any]:
    """Train the same too-large recurrent weight without clipping, with norm and with value clipping.

    A run *diverged* when its loss or gradient became non-finite (it stops there) or its final
    loss (mean of the last 20 steps) exceeds ``diverge_factor`` times its first loss.
    """
    runs: Dict[str, Any] = {}
    for mode in ("none", "norm", "value"):
        torch.manual_seed(seed)
        model = LastStepRegressor(cell, 2, hidden)
        for k in range(model.encoder.num_layers):
            w_hh = model.encoder.layer_weights(k)[1]
            if w_hh.shape[0] == w_hh.shape[1]:
                scale_spectral_radius(w_hh, radius)
            else:  # gated cells: scale every recurrent block
                H = w_hh.shape[1]
                for j in range(w_hh.shape[0] // H):
                    scale_spectral_radius(w_hh.data[j * H:(j + 1) * H], radius)
        rho = spectral_radius(model.encoder)
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        rng = np.random.default_rng(seed + 2)
        rec: Dict[str, List[float]] = {"loss": [], "grad_norm": [], "grad_norm_clipped": [], "fired": []}
        for step in range(steps):
            x, y = (torch.from_numpy(a) for a in adding_problem(batch_size, seq_len, rng))
            loss = model(x, y)
            if not torch.isfinite(loss):
                rec["loss"].append(float("nan"))
                break
            if not _clipped_step(opt, loss, list(model.named_parameters()), mode, clip_norm, clip_value, rec):
                break
        runs[mode] = {**_summarise(rec, steps, diverge_factor), "spectral_radius_init": rho}
    return {"setup": {"cell": cell, "radius": radius, "seq_len": seq_len, "hidden": hidden,
                      "batch_size": batch_size, "steps": steps, "optimizer": f"SGD lr {lr}",
                      "clip_norm": clip_norm, "clip_value": clip_value, "task": "adding problem (MSE, last step)",
                      "baseline": ADDING_BASELINE, "diverge_factor": diverge_factor},
            "runs": runs}


MODE_COLORS = {"none": "C3", "norm": "C0", "value": "C2"}  # one colour per method, in both panels


def exploding_figure(result: Dict[str, Any]):
    """Loss (left) and global gradient norm (right) per method; each method keeps its colour in
    both panels (before clipping solid, after dashed) and one legend sits below the panels,
    off the data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    s = result["setup"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.8))
    labels = {"none": "no clipping", "norm": f"norm clipping ({s['clip_norm']})",
              "value": f"value clipping ({s['clip_value']})"}
    for mode, r in result["runs"].items():
        color = MODE_COLORS[mode]
        a1.plot(r["loss"], color=color, label=labels[mode] + (" - diverged" if r["diverged"] else ""))
        a2.plot(r["grad_norm"], color=color, label=f"_{mode} before")
        if mode != "none":
            a2.plot(r["grad_norm_clipped"], color=color, ls="--", label=f"_{mode} after")
    if "baseline" in s:
        a1.axhline(s["baseline"], color="k", ls=":", lw=1, label="trivial baseline 1/6")
    a1.set_yscale("log"), a2.set_yscale("log")
    a1.set_xlabel("step"), a2.set_xlabel("step")
    a1.set_ylabel("training loss (MSE)" if "baseline" in s else "training loss"), a2.set_ylabel("global gradient norm")
    handles, names = a1.get_legend_handles_labels()
    handles += [Line2D([], [], color="gray"), Line2D([], [], color="gray", ls="--")]
    names += ["gradient norm before clipping", "after clipping"]
    fig.legend(handles, names, loc="lower center", ncol=3, fontsize=8, frameon=False)
    scaled = "as trained" if s.get("radius") is None else f"W_hh scaled to spectral radius {s['radius']}"
    what = f"{s['checkpoint']} ({s['cell']}) on {s['data']}" if "checkpoint" in s else f"{s['cell']}, H={s['hidden']}"
    fig.suptitle(f"{what}, {scaled}, T={s['seq_len']}, {s['optimizer']}", fontsize=10)
    fig.tight_layout(rect=(0, 0.13, 1, 1))
    return fig


def plot_exploding(result: Dict[str, Any], path) -> str:
    return _save(exploding_figure(result), path)


# ---------------------------------------------------------------------------------------
# trained checkpoints


@dataclass
class Probe:
    """A trained model and real data for it: ``sample(rng)`` -> (x, lengths, loss_fn) of a batch.

    ``model`` holds every trainable parameter (encoder and task head); ``x``/``lengths``/
    ``loss_fn`` are the fixed, evenly spread probe batch.
    """

    encoder: Any
    model: nn.Module
    x: Tensor
    lengths: Optional[Tensor]
    loss_fn: Callable[[Tensor], Tensor]
    scope: str
    sample: Callable[[np.random.Generator], Tuple[Tensor, Optional[Tensor], Callable[[Tensor], Tensor]]]
    loss_name: Optional[str] = None  # what loss_fn is, when not charlm's cross-entropy


def _charlm_probe(ckpt, data: Optional[str], seq_len: int, batch_size: int, loss: str) -> Probe:
    """charlm: B windows of T characters spread evenly over the data; CE on the last step or all."""
    from ..data.datasets import CORPORA, corpus_path
    from ..data.text import CharVocab, count_unknown, encode_corpus
    from ..errors import DataError

    vocab = CharVocab.from_json(ckpt.config["data"]["vocab"])
    data = data or ckpt.config["data"].get("corpus")
    if data in CORPORA:
        corpus = encode_corpus(corpus_path(data), name=data)
        _, ids = corpus.split(ckpt.config.get("train", {}).get("data", {}).get("val_fraction", 0.1))
        text = corpus.vocab.decode(np.asarray(ids))
        ids = np.array([vocab.index[c] for c in text if c in vocab.index], dtype=np.int64)
        scope = f"{data} validation split"
    else:
        ids, _ = count_unknown(corpus_path(data), vocab)
        scope = str(data)
    ids = np.asarray(ids)
    if len(ids) < seq_len + 1:
        raise DataError(f"{data}: {len(ids)} in-vocabulary characters, need at least --seq-len + 1 = {seq_len + 1}")
    from ..predictors.torch_nets import load_modules

    encoder, task = load_modules(ckpt.config, ckpt.weights, where=str(ckpt.path))
    model = nn.ModuleDict({"encoder": encoder, "task": task})

    def batch_at(starts):
        x = np.stack([ids[s:s + seq_len] for s in starts])
        y = np.stack([ids[s + 1:s + seq_len + 1] for s in starts])
        batch = {"x": torch.from_numpy(x), "y": torch.from_numpy(y)}
        inp, lengths = task.inputs(batch)
        target = batch["y"]

        def loss_fn(out: Tensor) -> Tensor:
            logits = task.logits(out)  # (B, T, V)
            if loss == "last":
                return F.cross_entropy(logits[:, -1], target[:, -1])
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))

        return inp, lengths, loss_fn

    x, lengths, loss_fn = batch_at(np.linspace(0, len(ids) - seq_len - 1, batch_size).astype(np.int64))
    return Probe(encoder, model, x.detach(), lengths, loss_fn, scope,
                 lambda rng: batch_at(rng.integers(0, len(ids) - seq_len, batch_size)))


# task -> probe(ckpt, data, seq_len, batch_size, loss) -> Probe
PROBES = {"charlm": _charlm_probe}


ProbeLoader = Callable[..., Tuple[Any, Probe]]  # (path, data, seq_len, batch_size, loss) -> (ckpt, probe)


def _load_probe(path, data, seq_len, batch_size, loss) -> Tuple[Any, Probe]:
    from pathlib import Path

    from .. import checkpoint as ckpt_io

    ckpt = ckpt_io.load_checkpoint(Path(path), expect_task=list(PROBES))
    return ckpt, PROBES[ckpt.config["task"]](ckpt, data, seq_len, batch_size, loss)


def _recurrent(path, loaded: Tuple[Any, Probe]) -> Tuple[Any, Probe]:
    from ..errors import ConfigError

    try:
        cell_name(loaded[1].encoder)
    except TypeError as e:
        raise ConfigError(f"{path}: {e}") from None
    return loaded


def exploding_checkpoint(path, data: Optional[str] = None, radius: Optional[float] = None, seq_len: int = 100,
                         batch_size: int = 16, steps: int = 50, lr: float = 0.05, clip_norm: float = 1.0,
                         clip_value: float = 0.05, seed: int = 0, diverge_factor: float = 2.0,
                         load_probe: ProbeLoader = _load_probe) -> Dict[str, Any]:
    """Continue training a checkpoint with plain SGD on its data without / with clipping.

    With ``radius``, every recurrent block W_h* is first rescaled to that spectral radius (the
    same perturbation for all three runs). The loss is the task's loss on every step.
    """
    runs: Dict[str, Any] = {}
    setup: Dict[str, Any] = {}
    for mode in ("none", "norm", "value"):
        ckpt, probe = _recurrent(path, load_probe(path, data, seq_len, batch_size, "all"))
        enc = probe.encoder
        if radius is not None:
            for k in range(enc.num_layers * enc.num_directions):
                w_hh = enc.layer_weights(k // enc.num_directions, reverse=k % enc.num_directions == 1)[1]
                H = w_hh.shape[1]
                for j in range(w_hh.shape[0] // H):
                    scale_spectral_radius(w_hh.data[j * H:(j + 1) * H], radius)
        rho = spectral_radius(enc)
        params = [(n, p) for n, p in probe.model.named_parameters() if p.requires_grad]
        opt = torch.optim.SGD([p for _, p in params], lr=lr)
        rng = np.random.default_rng(seed)
        rec: Dict[str, List[float]] = {"loss": [], "grad_norm": [], "grad_norm_clipped": [], "fired": []}
        for _ in range(steps):
            x, lengths, loss_fn = probe.sample(rng)
            y, _ = enc(x, None, lengths)
            loss = loss_fn(y)
            if not torch.isfinite(loss):
                rec["loss"].append(float("nan"))
                break
            if not _clipped_step(opt, loss, params, mode, clip_norm, clip_value, rec):
                break
        runs[mode] = _summarise(rec, steps, diverge_factor)
        runs[mode]["spectral_radius_init"] = rho
        setup = {"checkpoint": str(path), "task": ckpt.config["task"], "data": probe.scope,
                 "cell": cell_name(enc), "radius": radius, "seq_len": int(probe.x.shape[1]), "batch_size": batch_size,
                 "steps": steps, "optimizer": f"SGD lr {lr}", "clip_norm": clip_norm, "clip_value": clip_value,
                 "diverge_factor": diverge_factor, "loss": "the task's loss on every step"}
    return {"setup": setup, "runs": runs}


def _clipped_step(opt, loss, params, mode: str, clip_norm, clip_value, rec) -> bool:
    """Backward, clip (norm / value / none) while measuring, record, then step. Returns False,
    without stepping, once the gradient norm is no longer finite (divergence)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    res = clip_and_measure(params, clip_norm=clip_norm if mode == "norm" else None,
                           clip_value=clip_value if mode == "value" else None)
    rec["loss"].append(loss.item())
    rec["grad_norm"].append(res.total_before)
    rec["grad_norm_clipped"].append(res.total_after)
    rec["fired"].append(bool(res.fired))
    if not all(math.isfinite(v) for v in (res.total_before, res.total_after)):
        return False
    opt.step()
    return True


def _summarise(rec: Dict[str, List[float]], steps: int, diverge_factor: float) -> Dict[str, Any]:
    losses = np.asarray(rec["loss"], dtype=float)
    finite = losses[np.isfinite(losses)]
    tail = finite[-max(1, min(len(finite), 20)):] if len(finite) else np.array([np.nan])
    diverged = bool(len(finite) < len(losses) or len(losses) < steps
                    or not float(np.mean(tail)) <= diverge_factor * losses[0])
    return {**rec, "diverged": diverged, "steps_run": len(losses),
            "max_loss": float(np.nanmax(losses)) if np.isfinite(losses).any() else float("nan"),
            "final_loss": float(np.mean(tail)),
            "max_grad_norm": float(np.nanmax(rec["grad_norm"])) if rec["grad_norm"] else float("nan"),
            "clip_fraction": float(np.mean(rec["fired"])) if rec["fired"] else 0.0}


def checkpoint_flow(path, data: Optional[str] = None, seq_len: int = 200, batch_size: int = 16,
                    loss: str = "last", lag: int = 60, load_probe: ProbeLoader = _load_probe) -> Dict[str, Any]:
    """Gradient flow, gate statistics and spectral radii of a trained checkpoint on real data."""
    ckpt, probe = _recurrent(path, load_probe(path, data, seq_len, batch_size, loss))
    encoder, x, lengths, loss_fn, scope = probe.encoder, probe.x, probe.lengths, probe.loss_fn, probe.scope
    name = cell_name(encoder)
    seq_len = int(x.shape[1])  # charlm: --seq-len; other tasks: the probe batch's padded length
    flow = gradient_flow(encoder, x, loss_fn, lengths=lengths)
    return {"setup": {"checkpoint": str(path), "task": ckpt.config["task"], "data": scope, "cell": name,
                      "seq_len": seq_len, "batch_size": int(x.shape[0]), "loss": probe.loss_name or (
                          "cross-entropy on every step" if loss == "all" else "cross-entropy on the last step"),
                      "lag": min(lag, seq_len - 1),
                      "init": f"trained checkpoint (step {ckpt.config.get('global_step')})",
                      "norm": "||dL/dh_t||, Frobenius over batch and units"},
            "loss": flow.loss,
            "layers": {f"l{k}": {"norms": flow.norms[k].tolist(), "last": float(flow.norms[k][-1]),
                                 "lag": float(flow.norms[k][-1 - min(lag, seq_len - 1)])}
                       for k in range(flow.norms.shape[0])},
            "spectral_radius": spectral_radius(encoder), "gates": gate_stats(encoder, x, lengths=lengths)}


def plot_checkpoint(result: Dict[str, Any], path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result["setup"]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, rec in result["layers"].items():
        norms = np.asarray(rec["norms"])[::-1]
        with np.errstate(divide="ignore"):
            ax.plot(np.arange(len(norms)), np.log10(norms), label=f"{s['cell']} layer {name[1:]}")
    ax.set_xlabel("steps back from the last step")
    ax.set_ylabel("log10 ||dL/dh_t||")
    ax.legend()
    ax.set_title(f"{s['checkpoint']} on {s['data']}\n{s['loss']}, T={s['seq_len']}, {s['init']}", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
