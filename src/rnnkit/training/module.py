"""The one generic LightningModule: any encoder, any task, truncated BPTT with carried state.

The training loop never asks which encoder or task it holds: it asks the encoder whether
its state may be carried across consecutive batches (``encoder.carries_state``) and the
task for inputs and a loss.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Dict, Optional

import lightning as L
import torch
from torch import nn

from ..errors import TrainingDiverged
from ..layers import Encoder, detach_state
from .config import OptimConfig
from .schedule import lr_factor

LN2 = math.log(2.0)


class SequenceModule(L.LightningModule):
    """Encoder + task, AdamW with warm-up and cosine decay, carried state for TBPTT."""

    def __init__(self, encoder: Encoder, task: nn.Module, optim: OptimConfig,
                 schedule_horizon: Optional[int] = None, max_bad_steps: int = 10, seed: int = 0) -> None:
        super().__init__()
        self.encoder = encoder
        self.task = task
        self.optim_cfg = optim
        self.schedule_horizon = schedule_horizon  # total steps of the cosine schedule
        self.step_offset = 0  # global steps done before this process (resume)
        self.carry: Any = None  # detached encoder state carried between training batches
        self._val_carry: Any = None
        self.data_position = (0, 0)  # (epoch, next window) of the training stream
        self._t_batch = 0.0
        self.rate_unit = getattr(task, "rate_unit", "tokens")  # what the task counts speed in
        self.rate: Optional[float] = None  # smoothed rate_unit per second (all processes)
        self.max_bad_steps = max_bad_steps
        self.seed = seed
        self._nonfinite_loss = False
        self.bad_streak = 0  # consecutive steps skipped for a non-finite loss or gradient
        self.skipped_steps = 0

    @property
    def total_steps(self) -> int:
        """Global steps completed, across resumes."""
        return self.step_offset + self.trainer.global_step

    def _carries(self) -> bool:
        """Carry state across batches only when the data is a stream (the task says so) and
        the encoder allows it (a Transformer or TCN sees a fixed window instead)."""
        return bool(getattr(self.task, "stream", False)) and bool(self.encoder.carries_state)

    # -- training ------------------------------------------------------------------------
    def on_train_start(self) -> None:
        if self.trainer.world_size > 1:
            # the same seed everywhere made every rank draw the same dropout masks; the
            # weights were already initialised identically (and DDP broadcasts rank 0's)
            torch.manual_seed(self.seed * 1009 + self.trainer.global_rank)

    def on_train_batch_start(self, batch, batch_idx) -> None:
        self._t_batch = time.perf_counter()

    def _encode(self, x, state, lengths):
        """``(y, final state)``; without a carried state only ``y`` is computed (``state`` None),
        which lets the fused recurrent encoders skip packing variable-length batches."""
        if self._carries():
            return self.encoder(x, state, lengths)
        return self.encoder.outputs(x, lengths), None

    def training_step(self, batch: Dict[str, Any], batch_idx: int):
        carry = self._carries() and not batch["reset"]
        x, lengths = self.task.inputs(batch)  # (B, T, C)
        y, state = self._encode(x, self.carry if carry else None, lengths)  # (B, T, H)
        loss, metrics = self.task.loss(y, batch)
        self.data_position = (int(batch["epoch"]), int(batch["index"]) + 1)
        self._count = metrics[self.rate_unit]
        if not torch.isfinite(loss):
            # keep going through backward (under DDP every rank must join the gradient
            # all-reduce); on_before_optimizer_step sees the non-finite gradients and skips
            self._nonfinite_loss = True
            self.carry = None  # the state that produced it is suspect too
            return loss
        self.carry = detach_state(state) if self._carries() else None
        self.log("train_loss", loss, prog_bar=True, batch_size=int(metrics["tokens"]))
        return loss

    def on_before_optimizer_step(self, optimizer) -> None:
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        bad_loss, self._nonfinite_loss = self._nonfinite_loss, False
        if not bad_loss and all(bool(torch.isfinite(g).all()) for g in grads):
            self.bad_streak = 0
            return
        for p in self.parameters():
            p.grad = None  # AdamW leaves parameters without a gradient untouched
        self.carry = None
        self._skip_step("loss" if bad_loss else "gradient")

    def _skip_step(self, what: str) -> None:
        self.bad_streak += 1
        self.skipped_steps += 1
        step = self.total_steps + 1
        if self.trainer.is_global_zero:
            print(f"rnnkit: step {step}: non-finite {what}; update skipped "
                  f"({self.bad_streak} in a row, {self.skipped_steps} in all)", file=sys.stderr, flush=True)
        if self.bad_streak >= self.max_bad_steps:
            lr = self.trainer.optimizers[0].param_groups[0]["lr"]
            raise TrainingDiverged(
                f"training diverged at step {step}: non-finite {what} for {self.bad_streak} consecutive "
                f"steps; lower the learning rate (--lr, now {lr:.3g}) or clip gradients (--clip-norm 1)")

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.skipped_steps:
            self.log("skipped_steps", float(self.skipped_steps))
        dt = time.perf_counter() - self._t_batch
        rate = self._count * self.trainer.world_size / max(dt, 1e-9)
        self.rate = rate if self.rate is None else 0.9 * self.rate + 0.1 * rate
        self.log(f"{self.rate_unit}/s", round(self.rate), prog_bar=True)
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"])

    # -- validation ----------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._val_carry = None

    def validation_step(self, batch: Dict[str, Any], batch_idx: int) -> None:
        carry = self._carries() and not batch["reset"]
        x, lengths = self.task.inputs(batch)
        y, state = self._encode(x, self._val_carry if carry else None, lengths)
        loss, metrics = self.task.loss(y, batch)
        self._val_carry = state if self._carries() else None
        n = int(metrics["tokens"])
        self.log("val_loss", loss, prog_bar=True, batch_size=n, sync_dist=True)
        if getattr(self.task, "loss_in_bits", False):  # a per-character loss: also in bits/char
            self.log("val_bpc", loss / LN2, batch_size=n, sync_dist=True)
        if "correct" in metrics:  # classifiers report correct predictions: log accuracy too
            self.log("val_accuracy", metrics["correct"] / max(n, 1), prog_bar=True, batch_size=n, sync_dist=True)

    # -- optimisation ----------------------------------------------------------------------
    def lr_factor(self, step: int) -> float:
        """Multiplier of the peak learning rate after ``step`` optimizer steps."""
        cfg = self.optim_cfg
        return lr_factor(step, cfg.warmup_steps, cfg.schedule, self.schedule_horizon, cfg.min_lr_ratio)

    def configure_optimizers(self):
        cfg = self.optim_cfg
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            (decay if p.dim() >= 2 else no_decay).append(p)
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay},
             {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.lr, betas=(0.9, cfg.beta2),
        )
        sched = torch.optim.lr_scheduler.LambdaLR(opt, self.lr_factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
