"""``rnnkit train charlm --engine numpy``: the char-LM trained by the NumPy reference engine.

No torch and no Lightning: the forward and backward passes are rnnkit.reference's
hand-written BPTT, the optimizer its AdamW. Everything else is shared with the torch
engine, so the two are interchangeable on the same run directory:

* the same corpus encoding, contiguous streams and data positions (``StreamLayout``);
* the same learning-rate schedule (:mod:`rnnkit.training.schedule`) and clipping;
* dropout between layers and before the head, as the torch model applies it;
* the same checkpoint directory: weights under the same names, AdamW moments keyed by
  parameter name, the carried state in PyTorch's (L, B, H) layout. A run started by one
  engine resumes in the other (weights, moments, schedule, data position and carried state
  carry over; the random-number streams differ, so that continuation is not bitwise). A
  run resumed in the same engine is bitwise identical to an uninterrupted one.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from .. import __version__
from .. import checkpoint as ckpt_io
from ..errors import ConfigError, DataError, TrainingDiverged
from ..reference.charlm import EMBEDDING, ENCODER_PREFIX, HEAD_BIAS, HEAD_WEIGHT, init_charlm
from ..reference.ops import (cross_entropy_backward, cross_entropy_forward, embedding_backward,
                             embedding_forward, linear_backward, linear_forward)
from ..reference.optim import AdamW, clip_grad_norm, clip_grad_value
from ..reference.sequence import RecurrentSpec, recurrent_backward, recurrent_forward
from .config import TrainConfig
from .progress import Budget, log_line, note, patience_from, warmup_warning
from .schedule import lr_factor

WEIGHT_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


class NumpyCharLM:
    """Embedding -> stacked recurrent layers (dropout between) -> dropout -> linear head."""

    def __init__(self, params: Dict[str, np.ndarray], cell: str, num_layers: int, dropout: float) -> None:
        self.params, self.cell, self.L, self.p = params, cell.removeprefix("hand-"), num_layers, dropout
        self.H = params[f"{ENCODER_PREFIX}weight_hh_l0"].shape[1]
        self.n_state = 2 if self.cell == "lstm" else 1

    def _layer(self, k: int) -> Dict[str, np.ndarray]:
        return {f"{n}_l0": self.params[f"{ENCODER_PREFIX}{n}_l{k}"] for n in WEIGHT_NAMES}

    def _layer_state(self, carry, k: int):
        if carry is None:
            return None
        if self.n_state == 1:
            return carry[k:k + 1]
        return (carry[0][k:k + 1], carry[1][k:k + 1])

    def loss_and_grads(self, ids: np.ndarray, targets: np.ndarray, carry, rng: Optional[np.random.Generator],
                       need_grads: bool = True):
        """ids, targets (B, T) -> (mean CE nats, grads or None, final state (L, B, H) layout)."""
        x, emb_cache = embedding_forward(ids, self.params[EMBEDDING])  # (B, T, E)
        caches, finals = [], []
        for k in range(self.L):
            spec = RecurrentSpec(self.cell, x.shape[-1], self.H, 1)
            y, st, cache = recurrent_forward(spec, self._layer(k), x, self._layer_state(carry, k))  # (B, T, H)
            mask = None
            if rng is not None and self.p > 0:
                keep = 1.0 - self.p
                mask = ((rng.random(y.shape) < keep) / keep).astype(y.dtype)  # inverted dropout
                y = y * mask
            caches.append((cache, mask))
            finals.append(st)
            x = y
        logits, lin_cache = linear_forward(x, self.params[HEAD_WEIGHT], self.params[HEAD_BIAS])  # (B, T, V)
        loss, ce_cache = cross_entropy_forward(logits, targets)
        if self.n_state == 1:
            state = np.concatenate(finals, 0)  # (L, B, H)
        else:
            state = (np.concatenate([f[0] for f in finals], 0), np.concatenate([f[1] for f in finals], 0))
        if not need_grads:
            return loss, None, state
        dy, dW, db = linear_backward(cross_entropy_backward(1.0, ce_cache), lin_cache)
        grads = {HEAD_WEIGHT: dW, HEAD_BIAS: db}
        for k in reversed(range(self.L)):
            cache, mask = caches[k]
            if mask is not None:
                dy = dy * mask
            dy, _, g, _ = recurrent_backward(dy, None, cache)  # truncated BPTT: no dL/d(initial state)
            grads.update({f"{ENCODER_PREFIX}{n}_l{k}": g[f"{n}_l0"] for n in WEIGHT_NAMES})
        grads[EMBEDDING] = embedding_backward(dy, emb_cache)
        return loss, grads, state


def evaluate_ids(model: NumpyCharLM, ids: np.ndarray, seq_len: int, n_streams: int = 16,
                 max_windows: Optional[int] = None) -> float:
    """Mean next-character loss (nats) with carried state, as ``tasks.charlm.score_ids``."""
    from ..data.streams import StreamLayout

    n_streams = max(1, min(n_streams, (len(ids) - 1) // 2))
    layout = StreamLayout(len(ids), n_streams, seq_len, drop_last=False)
    state, total, count = None, 0.0, 0
    windows = layout.n_windows if max_windows is None else min(max_windows, layout.n_windows)
    for i in range(windows):
        x, y = layout.window(ids, i)
        loss, _, state = model.loss_and_grads(x, y, state, None, need_grads=False)
        total += loss * y.size
        count += y.size
    return total / max(count, 1)


def _carry_flat(carry) -> Tuple[Dict[str, np.ndarray], Any]:
    if carry is None:
        return {}, None
    if isinstance(carry, np.ndarray):
        return {"carry.0": carry}, "carry.0"
    return {f"carry.{i}": c for i, c in enumerate(carry)}, [f"carry.{i}" for i in range(len(carry))]


def _carry_load(tensors, structure):
    if structure is None:
        return None
    if isinstance(structure, str):
        return np.array(tensors[structure], dtype=np.float32)
    return tuple(np.array(tensors[k], dtype=np.float32) for k in structure)


def train_numpy(cfg: TrainConfig, resume: Optional[str] = None, overwrite: bool = False) -> Dict[str, Any]:
    """Train the char-LM with the NumPy engine; checkpoints in the shared format."""
    from ..data.datasets import corpus_path
    from ..data.streams import StreamLayout
    from ..data.text import CharVocab, encode_corpus
    from .run import claim_out_dir, prepare_out_dir

    if cfg.task != "charlm":
        raise ConfigError(f"--engine numpy trains the charlm task only, not {cfg.task!r}")
    encoder = cfg.model.encoder.removeprefix("hand-")
    if encoder not in ("lstm", "gru", "rnn", "rnn-relu"):
        raise ConfigError(f"--engine numpy supports the lstm, gru, rnn and rnn-relu encoders, not {cfg.model.encoder!r}")
    if cfg.model.tie_weights:
        raise ConfigError("--engine numpy does not tie weights; drop --tie-weights")
    if cfg.run.max_steps is None and cfg.run.max_time is None:
        raise ConfigError("give a budget: --max-steps N and/or --max-time MINUTES")
    if cfg.run.devices not in ("1", "auto") or cfg.run.num_nodes != 1 or cfg.run.strategy != "auto":
        raise ConfigError("--engine numpy runs in one process; drop --devices/--num-nodes/--strategy")
    out = prepare_out_dir(cfg.run.out or resume, resume is not None, overwrite)
    resumed = None
    if resume is not None:
        resumed = ckpt_io.find_resumable(Path(resume), expect_task=["charlm"])
        for section in ("model", "data", "optim"):
            setattr(cfg, section, type(getattr(cfg, section))(**resumed.config["train"][section]))

    path = corpus_path(cfg.data.data)
    vocab = CharVocab.from_json(resumed.config["data"]["vocab"]) if resumed else None
    corpus = encode_corpus(path, name=cfg.data.data, vocab=vocab)
    train_ids, val_ids = corpus.split(cfg.data.val_fraction)
    need = cfg.data.batch_size * cfg.data.seq_len + 1
    if len(train_ids) < need:
        raise DataError(f"{path}: corpus too short: {len(train_ids)} training characters, but one BPTT window "
                        f"for each of --batch-size {cfg.data.batch_size} streams needs {need} "
                        f"(--seq-len {cfg.data.seq_len}); lower --batch-size or --seq-len")
    layout = StreamLayout(len(train_ids), cfg.data.batch_size, cfg.data.seq_len)
    claim_out_dir(out, resumed is not None, overwrite)
    m = cfg.model
    rng = np.random.default_rng(cfg.run.seed)
    if resumed:
        params = {k: np.array(v, dtype=np.float32) for k, v in resumed.weights.items()}
    else:
        params = init_charlm(len(corpus.vocab), encoder, m.embedding_dim, m.hidden_size, m.num_layers,
                             rng, np.float32)
    model = NumpyCharLM(params, encoder, m.num_layers, m.dropout)
    o = cfg.optim
    opt = AdamW(params, lr=o.lr, betas=(0.9, o.beta2), weight_decay=o.weight_decay,
                decay=[n for n, p in params.items() if p.ndim >= 2])
    step, (epoch, index), carry, horizon = 0, (0, 0), None, cfg.run.max_steps
    if resumed:
        meta, tensors = resumed.train_meta, resumed.train_tensors
        step = int(meta["global_step"])
        epoch, index = meta["data_position"]
        carry = _carry_load(tensors, meta["carry"])
        horizon = cfg.run.max_steps or meta.get("schedule_horizon")
        for name in params:
            for kind in ("exp_avg", "exp_avg_sq"):
                if f"optim.{name}.{kind}" in tensors:
                    opt.state[kind][name] = np.array(tensors[f"optim.{name}.{kind}"], dtype=np.float32)
        opt.t = step
        if meta.get("engine") == "numpy" and "rng" in meta:
            rng.bit_generator.state = meta["rng"]
        else:
            print(f"rnnkit: continuing a {meta.get('engine', 'torch')}-engine run with the numpy engine "
                  f"(weights, AdamW moments, schedule, data position and state carry over; RNG does not)",
                  file=sys.stderr)
        note(f"resumed from step {step}")
    if cfg.run.max_steps is not None and step >= cfg.run.max_steps:
        print(f"already at step {step} >= --max-steps {cfg.run.max_steps}; nothing to do")
        return {"global_step": step, "out": str(out), "metrics": {}}

    metrics: Dict[str, float] = {}
    patience = patience_from(cfg.run, resumed.train_meta if resumed else None)

    def save() -> None:
        bad = [k for k, v in params.items() if not np.isfinite(v).all()]
        if bad:
            print(f"rnnkit: step {step}: weights are not finite ({bad[0]}); checkpoint not written", file=sys.stderr)
            return
        opt_tensors = {}
        for name in params:
            for kind in ("exp_avg", "exp_avg_sq"):
                if name in opt.state[kind]:
                    opt_tensors[f"optim.{name}.{kind}"] = opt.state[kind][name]
            opt_tensors[f"optim.{name}.step"] = np.array(float(opt.t), dtype=np.float32)
        carry_tensors, carry_meta = _carry_flat(carry)
        config = {"task": "charlm", "rnnkit_version": __version__, "model": asdict(cfg.model),
                  "data": {"corpus": cfg.data.data, "vocab": corpus.vocab.to_json()},
                  "train": {"model": asdict(cfg.model), "data": asdict(cfg.data), "optim": asdict(cfg.optim)},
                  "metrics": dict(metrics), "global_step": step}
        meta = {"engine": "numpy", "global_step": step, "data_position": [epoch, index],
                "schedule_horizon": horizon, "optimizer": {"kind": "adamw"},
                "rng": rng.bit_generator.state, "carry": carry_meta, "world_size": 1, "metrics": dict(metrics)}
        if patience is not None:
            meta["early_stopping"] = patience.state()
        target = out / "checkpoints" / ckpt_io.step_dir_name(step)
        ckpt_io.write_checkpoint_dir(target, params, config, {**opt_tensors, **carry_tensors}, meta)
        ckpt_io.publish_top_level(target, out)
        ckpt_io.prune_step_dirs(out, cfg.run.keep_checkpoints, protect=[target])

    from .signals import StopFlag

    stop = StopFlag().install()
    t_start = time.monotonic()
    deadline = None if cfg.run.max_time is None else t_start + cfg.run.max_time * 60
    bad_streak, tokens, t_log = 0, 0, time.monotonic()
    measured_at = step + 20
    budget = Budget(cfg.run.max_steps, cfg.run.max_time, step, now=t_start)
    warned = _warn_warmup(o.warmup_steps, horizon, step)
    try:
        while cfg.run.max_steps is None or step < cfg.run.max_steps:
            if stop.signal is not None:
                save()
                return {"global_step": step, "out": str(out), "metrics": dict(metrics), "interrupted": stop.name}
            if deadline is not None and time.monotonic() >= deadline:
                break
            if index >= layout.n_windows:
                epoch, index = epoch + 1, 0
            if index == 0:
                carry = None
            x, y = layout.window(train_ids, index)
            loss, grads, new_carry = model.loss_and_grads(x, y, carry, rng)
            index += 1
            finite = math.isfinite(loss) and all(np.isfinite(g).all() for g in grads.values())
            if not finite:
                bad_streak += 1
                carry = None
                print(f"rnnkit: step {step + 1}: non-finite loss or gradient; update skipped", file=sys.stderr)
                if bad_streak >= cfg.run.max_bad_steps:
                    raise TrainingDiverged(
                        f"training diverged at step {step + 1}: non-finite loss or gradient for {bad_streak} "
                        f"consecutive steps; lower the learning rate (--lr, now {opt.lr:.3g}) or clip gradients (--clip-norm 1)")
            else:
                bad_streak = 0
                carry = new_carry
                if o.clip_value is not None:
                    clip_grad_value(grads, o.clip_value)
                elif o.clip_norm is not None:
                    clip_grad_norm(grads, o.clip_norm)
                opt.lr = o.lr * lr_factor(step, o.warmup_steps, o.schedule, horizon, o.min_lr_ratio)
                opt.step(grads)
            step += 1
            tokens += y.size
            if horizon is None and deadline is not None and step == measured_at:
                elapsed = time.monotonic() - t_start
                horizon = step + int(0.95 * (deadline - time.monotonic()) * 20 / max(elapsed, 1e-9))
                warned = warned or _warn_warmup(o.warmup_steps, horizon, step)
            stopping = False
            if len(val_ids) >= 2 and step % cfg.run.val_every == 0:
                v = evaluate_ids(model, val_ids, cfg.data.seq_len, max_windows=cfg.run.val_batches)
                metrics.update(val_loss=v, val_bpc=v / math.log(2))
                if patience is not None and patience.update(v, step):
                    patience.stopped_step, stopping = step, True
            if cfg.run.log_every and step % cfg.run.log_every == 0:  # no bar here: always the plain line
                now = time.monotonic()
                shown = {k: metrics[k] for k in ("val_loss", "val_bpc") if k in metrics}
                note(log_line(step, budget.final_step(step, now), loss, shown, tokens / max(now - t_log, 1e-9),
                              "tokens", budget.seconds_left(step, now)))
                tokens, t_log = 0, now
            if step % cfg.run.checkpoint_every == 0 and not stopping:
                save()
            if stopping:
                break
    finally:
        stop.restore()
    if len(val_ids) >= 2:
        v = evaluate_ids(model, val_ids, cfg.data.seq_len, max_windows=None)  # the whole split, as the torch engine
        metrics.update(val_loss=v, val_bpc=v / math.log(2))
    save()
    summary = {"global_step": step, "out": str(out), "metrics": dict(metrics)}
    if patience is not None and patience.stopped_step is not None:
        summary["stopped_early"] = patience.reason()
    return summary


def _warn_warmup(warmup_steps: int, horizon: Optional[int], step: int) -> bool:
    message = warmup_warning(warmup_steps, horizon, step)
    if message:
        note(message)
    return bool(message)
