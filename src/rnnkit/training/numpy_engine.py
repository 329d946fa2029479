"""``rnnkit train charlm --engine numpy``: the char-LM trained by the NumPy reference engine.

No torch and no Lightning: each step is ``rnnkit.reference.charlm.train_step`` (the
reference engine's hand-written forward, BPTT, clipping and update; the same function the
educational ``CharLMTrainer`` runs), the optimizer its AdamW. Everything else is shared
with the torch engine, so the two are interchangeable on the same run directory:

* the same corpus reading and checks (``recipes.charlm.load_corpus``), contiguous streams
  and data positions (``StreamLayout``);
* the same learning-rate schedule (:mod:`rnnkit.training.schedule`) and clipping;
* dropout between layers and before the head, as the torch model applies it;
* the same run directory (``training/rundir.py``: lock, --overwrite, checkpoints, clean-up)
  and checkpoint layout: weights under the same names, AdamW moments keyed by
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
from ..errors import ConfigError, Interrupted, TrainingDiverged
from ..reference.charlm import evaluate, init_charlm, train_step
from ..reference.optim import AdamW
from ..reference.streams import StreamLayout
from .config import TrainConfig
from .progress import Budget, log_line, note, patience_from, warmup_warning
from .rundir import RunDir
from .schedule import lr_factor
from .signals import StopFlag, StopNow, refuse_if_pending

EVAL_STREAMS = 16  # as tasks.charlm.EVAL_STREAMS (not imported: that module needs torch)


def evaluate_ids(params, cell: str, ids: np.ndarray, seq_len: int, n_streams: int = EVAL_STREAMS,
                 max_windows: Optional[int] = None) -> float:
    """Mean next-character loss (nats) with carried state, as ``tasks.charlm.score_ids``."""
    n_streams = max(1, min(n_streams, (len(ids) - 1) // 2))
    return evaluate(params, cell, ids, n_streams, seq_len, drop_last=False, max_windows=max_windows)


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


def _check_options(cfg: TrainConfig) -> str:
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
    return encoder


class NumpyRun:
    """The state of one NumPy-engine run: weights, AdamW, data position, carried state, RNG."""

    def __init__(self, cfg: TrainConfig, cell: str, vocab_size: int, resumed: Optional[ckpt_io.Checkpoint]) -> None:
        m, o = cfg.model, cfg.optim
        self.cfg, self.cell = cfg, cell
        self.rng = np.random.default_rng(cfg.run.seed)
        if resumed:
            self.params = {k: np.array(v, dtype=np.float32) for k, v in resumed.weights.items()}
        else:
            self.params = init_charlm(vocab_size, cell, m.embedding_dim, m.hidden_size, m.num_layers,
                                      self.rng, np.float32)
        self.opt = AdamW(self.params, lr=o.lr, betas=(0.9, o.beta2), weight_decay=o.weight_decay,
                         decay=[n for n, p in self.params.items() if p.ndim >= 2])
        self.step, self.epoch, self.index, self.carry = 0, 0, 0, None
        self.horizon = cfg.run.max_steps
        self.metrics: Dict[str, float] = {}
        self.patience = patience_from(cfg.run, resumed.train_meta if resumed else None)
        if resumed:
            self._resume(resumed)

    def _resume(self, resumed: ckpt_io.Checkpoint) -> None:
        meta, tensors = resumed.train_meta, resumed.train_tensors
        self.step = int(meta["global_step"])
        self.epoch, self.index = meta["data_position"]
        self.carry = _carry_load(tensors, meta["carry"])
        self.horizon = self.cfg.run.max_steps or meta.get("schedule_horizon")
        for name in self.params:
            for kind in ("exp_avg", "exp_avg_sq"):
                if f"optim.{name}.{kind}" in tensors:
                    self.opt.state[kind][name] = np.array(tensors[f"optim.{name}.{kind}"], dtype=np.float32)
        self.opt.t = self.step
        if meta.get("engine") == "numpy" and "rng" in meta:
            self.rng.bit_generator.state = meta["rng"]
        else:
            print(f"rnnkit: continuing a {meta.get('engine', 'torch')}-engine run with the numpy engine "
                  f"(weights, AdamW moments, schedule, data position and state carry over; RNG does not)",
                  file=sys.stderr)
        note(f"resumed from step {self.step}")

    def train_one(self, layout: StreamLayout, train_ids: np.ndarray) -> Tuple[float, int, bool]:
        """The next window: one step of the shared NumPy trainer; (loss, tokens, finite)."""
        o = self.cfg.optim
        if self.index >= layout.n_windows:
            self.epoch, self.index = self.epoch + 1, 0
        if self.index == 0:
            self.carry = None
        x, y = layout.window(train_ids, self.index)
        self.opt.lr = o.lr * lr_factor(self.step, o.warmup_steps, o.schedule, self.horizon, o.min_lr_ratio)
        loss, self.carry, finite = train_step(
            self.params, self.cell, self.opt, x, y, self.carry, dropout=self.cfg.model.dropout, rng=self.rng,
            clip_value=o.clip_value, clip_norm=None if o.clip_value is not None else o.clip_norm)
        self.index += 1
        self.step += 1
        return loss, y.size, finite

    def save(self, run: RunDir, data_config: Dict[str, Any]) -> bool:
        cfg = self.cfg
        opt_tensors = {}
        for name in self.params:
            for kind in ("exp_avg", "exp_avg_sq"):
                if name in self.opt.state[kind]:
                    opt_tensors[f"optim.{name}.{kind}"] = self.opt.state[kind][name]
            opt_tensors[f"optim.{name}.step"] = np.array(float(self.opt.t), dtype=np.float32)
        carry_tensors, carry_meta = _carry_flat(self.carry)
        config = {"task": "charlm", "rnnkit_version": __version__, "model": asdict(cfg.model), "data": data_config,
                  "train": {"model": asdict(cfg.model), "data": asdict(cfg.data), "optim": asdict(cfg.optim)},
                  "metrics": dict(self.metrics)}
        meta = {"engine": "numpy", "global_step": self.step, "data_position": [self.epoch, self.index],
                "schedule_horizon": self.horizon, "optimizer": {"kind": "adamw"},
                "rng": self.rng.bit_generator.state, "carry": carry_meta, "world_size": 1,
                "metrics": dict(self.metrics)}
        if self.patience is not None:
            meta["early_stopping"] = self.patience.state()
        return run.save(self.step, self.params, config, {**opt_tensors, **carry_tensors}, meta)


def train_numpy(cfg: TrainConfig, resume: Optional[str] = None, overwrite: bool = False) -> Dict[str, Any]:
    """Train the char-LM with the NumPy engine; checkpoints in the shared format."""
    from .recipes.charlm import load_corpus

    cell = _check_options(cfg)
    run = RunDir(cfg.run.out, resume, overwrite, keep=cfg.run.keep_checkpoints)
    resumed = None
    if resume is not None:
        resumed = ckpt_io.find_resumable(Path(resume), expect_task=["charlm"])
        for section in ("model", "data", "optim"):
            setattr(cfg, section, type(getattr(cfg, section))(**resumed.config["train"][section]))
    data = load_corpus(cfg, resumed.config["data"] if resumed else None)
    layout = StreamLayout(len(data.train_ids), cfg.data.batch_size, cfg.data.seq_len)
    state = NumpyRun(cfg, cell, data.vocab_size, resumed)
    summary = {"global_step": state.step, "out": str(run.path), "metrics": state.metrics}
    if cfg.run.max_steps is not None and state.step >= cfg.run.max_steps:
        print(f"already at step {state.step} >= --max-steps {cfg.run.max_steps}; nothing to do")
        return {**summary, "metrics": {}}
    stop = StopFlag()
    refuse_if_pending()
    try:
        with run.claim():
            stop.install()
            try:
                _loop(cfg, state, run, data, layout, stop)
            finally:
                stop.restore()
            if stop.signal is None and data.val_ids is not None:
                # the whole split, as the torch engine scores the final weights
                v = evaluate_ids(state.params, cell, data.val_ids, cfg.data.seq_len)
                state.metrics.update(val_loss=v, val_bpc=v / math.log(2))
            if run.last_saved != state.step or stop.signal is None:
                state.save(run, data.data_config)
            run.require_saved(state.step)
    except StopNow:
        raise Interrupted(f"stopped at once by a second interrupt, without saving step {state.step}; "
                          f"{run.saved_description()}") from None
    summary.update(global_step=state.step, metrics=dict(state.metrics))
    if stop.signal is not None:
        summary["interrupted"] = stop.name
    if state.patience is not None and state.patience.stopped_step is not None:
        summary["stopped_early"] = state.patience.reason()
    return summary


def _loop(cfg: TrainConfig, state: NumpyRun, run: RunDir, data, layout: StreamLayout, stop: StopFlag) -> None:
    """Train until the budget is spent, patience runs out or a stop is requested (checkpoints on the way)."""
    t_start = time.monotonic()
    deadline = None if cfg.run.max_time is None else t_start + cfg.run.max_time * 60
    bad_streak, tokens, t_log = 0, 0, time.monotonic()
    measured_at = state.step + 20
    budget = Budget(cfg.run.max_steps, cfg.run.max_time, state.step, now=t_start)
    warned = _warn_warmup(cfg.optim.warmup_steps, state.horizon, state.step)
    while cfg.run.max_steps is None or state.step < cfg.run.max_steps:
        if stop.signal is not None or (deadline is not None and time.monotonic() >= deadline):
            return
        loss, n, finite = state.train_one(layout, data.train_ids)
        if not finite:
            bad_streak += 1
            print(f"rnnkit: step {state.step}: non-finite loss or gradient; update skipped", file=sys.stderr)
            if bad_streak >= cfg.run.max_bad_steps:
                raise TrainingDiverged(
                    f"training diverged at step {state.step}: non-finite loss or gradient for {bad_streak} "
                    f"consecutive steps; lower the learning rate (--lr, now {state.opt.lr:.3g}) or clip gradients "
                    f"(--clip-norm 1)")
        else:
            bad_streak = 0
        tokens += n
        if state.horizon is None and deadline is not None and state.step == measured_at:
            elapsed = time.monotonic() - t_start
            state.horizon = state.step + int(0.95 * (deadline - time.monotonic()) * 20 / max(elapsed, 1e-9))
            warned = warned or _warn_warmup(cfg.optim.warmup_steps, state.horizon, state.step)
        stopping = False
        if data.val_ids is not None and state.step % cfg.run.val_every == 0:
            v = evaluate_ids(state.params, state.cell, data.val_ids, cfg.data.seq_len, max_windows=cfg.run.val_batches)
            state.metrics.update(val_loss=v, val_bpc=v / math.log(2))
            if state.patience is not None and state.patience.update(v, state.step):
                state.patience.stopped_step, stopping = state.step, True
        if cfg.run.log_every and state.step % cfg.run.log_every == 0:  # no bar here: always the plain line
            now = time.monotonic()
            shown = {k: state.metrics[k] for k in ("val_loss", "val_bpc") if k in state.metrics}
            note(log_line(state.step, budget.final_step(state.step, now), loss, shown,
                          tokens / max(now - t_log, 1e-9), "tokens", budget.seconds_left(state.step, now)))
            tokens, t_log = 0, now
        if stopping:
            return  # the final save after the loop writes this step
        if state.step % cfg.run.checkpoint_every == 0:
            state.save(run, data.data_config)


def _warn_warmup(warmup_steps: int, horizon: Optional[int], step: int) -> bool:
    message = warmup_warning(warmup_steps, horizon, step)
    if message:
        note(message)
    return bool(message)
