"""Callbacks: rnnkit checkpoints (safetensors + JSON, exact resume) and the time-budget schedule."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Dict, Optional

import lightning as L
import numpy as np
from lightning.pytorch.callbacks import Callback

from .. import checkpoint as ckpt_io
from .rundir import RunDir
from .signals import StopFlag
from .state import (carry_from_flat, carry_to_flat, optimizer_from_flat, optimizer_to_flat,
                    rng_from_flat, rng_to_flat, set_schedule_position)


def param_names(module) -> Dict[int, str]:
    return {id(p): n for n, p in module.named_parameters()}


def module_weights(module) -> Dict[str, np.ndarray]:
    """The module's weights as NumPy copies (the run directory checks that they are finite)."""
    return {k: v.detach().cpu().contiguous().numpy().copy() for k, v in module.state_dict().items()}


class RnnkitCheckpoint(Callback):
    """Writes rnnkit checkpoints through the run directory every ``every`` global steps and
    at the end of training.

    On resume it restores the optimizer and scheduler when training starts, and the RNG
    states right before the first batch, so the continued run is bitwise identical to an
    uninterrupted one on CPU.
    """

    def __init__(self, run: RunDir, every: int, make_config: Callable[[Any], Dict[str, Any]],
                 resume: Optional[ckpt_io.Checkpoint] = None, keep_best: bool = False) -> None:
        self.run = run
        self.every = every
        self.make_config = make_config
        self.resume = resume
        self.keep_best = keep_best
        self.best_loss = float("inf")  # a resumed run reads its saved best in on_train_start
        self._restore_rng = resume is not None
        self.metrics: Dict[str, float] = {}
        self.graceful: Optional["GracefulStop"] = None
        self.extra_state: Dict[str, Callable[[], Any]] = {}  # train_state.json key -> its current value (--patience)

    @property
    def last_saved(self) -> Optional[int]:
        return self.run.last_saved

    # -- resume --------------------------------------------------------------------------
    def on_train_start(self, trainer: L.Trainer, module) -> None:
        if self.resume is None:
            return
        # after --out was claimed: an --overwrite'd run's best/ has been moved aside by then
        self.best_loss = self.run.best_loss()
        meta, tensors = self.resume.train_meta, self.resume.train_tensors
        opt = trainer.optimizers[0]
        optimizer_from_flat(opt, param_names(module), tensors)
        step = int(meta["global_step"])
        set_schedule_position(opt, trainer.lr_scheduler_configs[0].scheduler, step, module.lr_factor(step))
        module.carry = carry_from_flat(tensors, meta["carry"], module.device)
        if meta.get("world_size", 1) != trainer.world_size or trainer.world_size > 1:
            module.carry = None
            print(f"rnnkit: the run was saved with {meta.get('world_size', 1)} process(es) and resumes with "
                  f"{trainer.world_size}: the carried state restarts from zero", file=sys.stderr)
        # log at global steps, so curves continue where the earlier run stopped
        loop = getattr(trainer.fit_loop, "epoch_loop", None)
        if loop is not None and hasattr(loop, "_batches_that_stepped"):
            loop._batches_that_stepped = step
        if meta.get("engine", "torch") != "torch":
            self._restore_rng = False  # another engine's RNG: continue, not bitwise
            print(f"rnnkit: continuing a {meta.get('engine')}-engine run with the torch engine "
                  f"(weights, AdamW moments, schedule, data position and state carry over; RNG does not)",
                  file=sys.stderr)

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if self._restore_rng:
            rng_from_flat(self.resume.train_tensors, self.resume.train_meta["rng"])
            self._restore_rng = False

    # -- saving --------------------------------------------------------------------------
    def on_validation_end(self, trainer, module) -> None:
        for k, v in trainer.callback_metrics.items():
            if k.startswith("val_"):
                self.metrics[k] = float(v)
        loss = self.metrics.get("val_loss", float("nan"))
        if self.keep_best and not trainer.sanity_checking and np.isfinite(loss) and loss < self.best_loss:
            self.save_best(trainer, module, loss)

    def save_best(self, trainer, module, loss: float) -> None:
        """Weights and config only: the best validation loss so far, never a resume point."""
        self.best_loss = loss
        if trainer.global_rank != 0:
            return
        config = self.make_config(module)
        config["metrics"] = dict(self.metrics)
        self.run.save_best(module.total_steps, module_weights(module), config)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        step = module.total_steps
        if step % self.every == 0 or self.stop_requested(trainer):
            self.save(trainer, module)

    def stop_requested(self, trainer) -> bool:
        return bool(getattr(trainer, "received_sigterm", False)) or (
            self.graceful is not None and self.graceful.signal is not None)

    def on_train_end(self, trainer, module) -> None:
        if self.last_saved != module.total_steps:
            self.save(trainer, module)

    def save(self, trainer: L.Trainer, module) -> None:
        if trainer.global_rank != 0:
            return
        step = module.total_steps
        weights = module_weights(module)
        opt_tensors, opt_meta = optimizer_to_flat(trainer.optimizers[0], param_names(module))
        rng_tensors, rng_meta = rng_to_flat()
        carry_tensors, carry_meta = carry_to_flat(module.carry if trainer.world_size == 1 else None)
        meta = {
            "engine": "torch",
            "global_step": step,
            "data_position": list(module.data_position),
            "schedule_horizon": module.schedule_horizon,
            "optimizer": opt_meta,
            "rng": rng_meta,
            "carry": carry_meta,
            "world_size": trainer.world_size,
            "metrics": dict(self.metrics),
            **{key: get() for key, get in self.extra_state.items()},
        }
        config = self.make_config(module)
        config["metrics"] = dict(self.metrics)
        self.run.save(step, weights, config, {**opt_tensors, **rng_tensors, **carry_tensors}, meta)


class TimeBudgetHorizon(Callback):
    """With only ``--max-time``, size the cosine schedule from the measured speed.

    The remaining time is converted into steps at the rate of the latest window after 20,
    40, 80, 160, ... steps, so a machine whose load changes during the run (measured: a run
    that slowed down 5x ended its schedule at a third of the budget) still decays the
    learning rate over the whole budget. The horizon in force is saved with every checkpoint.
    """

    def __init__(self, minutes: float, measure_steps: int = 20) -> None:
        self.seconds = minutes * 60.0
        self.next_measure = measure_steps
        self._t0: Optional[float] = None
        self._start_step = 0

    def on_train_start(self, trainer, module) -> None:
        self._t0 = self._t_last = time.monotonic()
        self._start_step = self._last_step = module.total_steps

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        done = module.total_steps - self._start_step
        if done < self.next_measure:
            return
        self.next_measure *= 2
        now = time.monotonic()
        rate = (module.total_steps - self._last_step) / max(now - self._t_last, 1e-9)  # the latest window
        self._t_last, self._last_step = now, module.total_steps
        remaining = max(0.0, self.seconds - (now - self._t0))
        # validation passes cost time too: keep a 5% margin
        module.schedule_horizon = module.total_steps + 1 + int(0.95 * remaining * rate)


def final_val_loss(metrics: Dict[str, float]) -> Optional[float]:
    v = metrics.get("val_loss")
    return None if v is None or not np.isfinite(v) else v


class GracefulStop(Callback):
    """Ends training after the current step when SIGINT/SIGTERM arrive (see signals.py)."""

    def __init__(self) -> None:
        self.flag = StopFlag()

    def install(self) -> None:
        self.flag.install()

    def restore(self) -> None:
        self.flag.restore()

    @property
    def signal(self) -> Optional[int]:
        return self.flag.signal

    @signal.setter
    def signal(self, value: Optional[int]) -> None:
        self.flag.signal = value

    @property
    def name(self) -> Optional[str]:
        return self.flag.name

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self.flag.signal is not None:
            trainer.should_stop = True
