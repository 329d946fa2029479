"""The one generic LightningModule: any encoder, any task, truncated BPTT with carried state.

The training loop never asks which encoder or task it holds: it asks the encoder whether
its state may be carried across consecutive batches (``encoder.carries_state``) and the
task for inputs and a loss.
"""

from __future__ import annotations

import math
import time
from typing import Any, Dict, Optional

import lightning as L
import torch
from torch import nn

from ..layers import Encoder, detach_state
from .config import OptimConfig

LN2 = math.log(2.0)


class SequenceModule(L.LightningModule):
    """Encoder + task, AdamW with warm-up and cosine decay, carried state for TBPTT."""

    def __init__(self, encoder: Encoder, task: nn.Module, optim: OptimConfig,
                 schedule_horizon: Optional[int] = None) -> None:
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
        self._tok_rate: Optional[float] = None

    @property
    def total_steps(self) -> int:
        """Global steps completed, across resumes."""
        return self.step_offset + self.trainer.global_step

    def _carries(self) -> bool:
        """Carry state across batches only when the data is a stream (the task says so) and
        the encoder allows it (a Transformer or TCN sees a fixed window instead)."""
        return bool(getattr(self.task, "stream", False)) and bool(self.encoder.carries_state)

    # -- training ------------------------------------------------------------------------
    def on_train_batch_start(self, batch, batch_idx) -> None:
        self._t_batch = time.perf_counter()

    def training_step(self, batch: Dict[str, Any], batch_idx: int):
        carry = self._carries() and not batch["reset"]
        x, lengths = self.task.inputs(batch)  # (B, T, C)
        y, state = self.encoder(x, self.carry if carry else None, lengths)  # (B, T, H)
        loss, metrics = self.task.loss(y, batch)
        self.carry = detach_state(state) if self._carries() else None
        self.data_position = (int(batch["epoch"]), int(batch["index"]) + 1)
        self.log("train_loss", loss, prog_bar=True, batch_size=int(metrics["tokens"]))
        self._tokens = metrics["tokens"]
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        dt = time.perf_counter() - self._t_batch
        rate = self._tokens * self.trainer.world_size / max(dt, 1e-9)
        self._tok_rate = rate if self._tok_rate is None else 0.9 * self._tok_rate + 0.1 * rate
        self.log("tok/s", round(self._tok_rate), prog_bar=True)
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"])

    # -- validation ----------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._val_carry = None

    def validation_step(self, batch: Dict[str, Any], batch_idx: int) -> None:
        carry = self._carries() and not batch["reset"]
        x, lengths = self.task.inputs(batch)
        y, state = self.encoder(x, self._val_carry if carry else None, lengths)
        loss, metrics = self.task.loss(y, batch)
        self._val_carry = state if self._carries() else None
        n = int(metrics["tokens"])
        self.log("val_loss", loss, prog_bar=True, batch_size=n, sync_dist=True)
        self.log("val_bpc", loss / LN2, batch_size=n, sync_dist=True)

    # -- optimisation ----------------------------------------------------------------------
    def lr_factor(self, step: int) -> float:
        """Multiplier of the peak learning rate after ``step`` optimizer steps."""
        cfg = self.optim_cfg
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.schedule == "constant" or not self.schedule_horizon:
            return 1.0
        span = max(1, self.schedule_horizon - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / span)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

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
