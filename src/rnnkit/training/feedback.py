"""The torch engine's side of :mod:`rnnkit.training.progress`: Lightning callbacks for what a
run tells its user, all on stderr (stdout carries the final ``done:`` line only).

* :class:`ProgressBar`: Lightning's own :class:`TQDMProgressBar`, moved to stderr, counting
  global steps towards the end of the run (``--max-steps`` or the step ``--max-time`` is
  expected to reach, whichever comes first), so tqdm shows a total and the time left; the
  postfix carries the loss and the speed in the task's own unit (``tokens/s``, ``texts/s``,
  ``windows/s``, ``utterances/s``, ``sentences/s``: ``task.rate_unit``);
* :class:`LogLines`: without a bar (``--no-progress``, or stderr is not a terminal), one
  plain line every ``--log-every`` steps, the same line the NumPy engine prints;
* :class:`EarlyStop`: ``--patience`` / ``--min-delta`` on the validation loss.

Both feedback callbacks also say, once, when the warm-up outlasts the run.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Dict, List, Optional, Tuple

from lightning.pytorch.callbacks import Callback, TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

from .progress import Budget, Patience, log_line, note, patience_from, warmup_warning

SHOWN_METRICS = ("val_loss", "val_bpc", "val_accuracy")  # validation numbers a log line carries


class _RunClock:
    """The budget of this process and the warm-up warning, shared by the bar and the lines."""

    def _start_clock(self, trainer, module, max_steps: Optional[int], max_minutes: Optional[float],
                     warmup_steps: int) -> None:
        self.budget = Budget(max_steps, max_minutes, module.total_steps)
        self._warmup_steps = warmup_steps
        self._horizon: Any = None
        self._warned = False
        self._check_warmup(trainer, module)

    def _check_warmup(self, trainer, module) -> None:
        """Once: with --max-steps at the start; with only --max-time when the horizon is measured."""
        if self._warned or module.schedule_horizon == self._horizon:
            return
        self._horizon = module.schedule_horizon
        message = warmup_warning(self._warmup_steps, self._horizon, module.total_steps)
        if message and trainer.is_global_zero:
            self._warned = True
            self._say(message)

    def _say(self, message: str) -> None:
        note(message)


class ProgressBar(_RunClock, TQDMProgressBar):
    """Lightning's tqdm bar on stderr, with a total and the time left (see the module doc)."""

    def __init__(self, max_steps: Optional[int], max_minutes: Optional[float], warmup_steps: int,
                 refresh_rate: int = 10) -> None:
        super().__init__(refresh_rate=refresh_rate)
        self._limits = (max_steps, max_minutes, warmup_steps)

    def init_train_tqdm(self) -> Tqdm:
        return Tqdm(desc="train", position=2 * self.process_position, disable=self.is_disabled, leave=True,
                    dynamic_ncols=True, file=sys.stderr, smoothing=0, unit="step", bar_format=self.BAR_FORMAT)

    def init_validation_tqdm(self) -> Tqdm:
        return Tqdm(desc="validation", position=2 * self.process_position + 1, disable=self.is_disabled,
                    leave=False, dynamic_ncols=True, file=sys.stderr, bar_format=self.BAR_FORMAT)

    def _say(self, message: str) -> None:
        bar = self._train_progress_bar
        if bar is not None and not bar.disable:
            bar.write(message, file=sys.stderr)
        else:
            note(message)

    def on_train_start(self, trainer, module) -> None:
        super().on_train_start(trainer, module)
        self._start_clock(trainer, module, *self._limits)

    def on_train_epoch_start(self, trainer, module) -> None:
        # the training data is one endless stream: count global steps, not batches of an epoch
        bar = self.train_progress_bar
        step = module.total_steps
        bar.reset(total=self.budget.final_step(step, time.monotonic()))
        bar.initial = bar.n = step
        bar.set_description("train")

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self._check_warmup(trainer, module)
        step = module.total_steps
        bar = self.train_progress_bar
        if self._should_update(step, bar.total) and not bar.disable:
            bar.total = self.budget.final_step(step, time.monotonic())
            bar.n = step
            bar.set_postfix(self.get_metrics(trainer, module))  # refreshes

    def get_metrics(self, trainer, module) -> Dict[str, Any]:
        metrics = super().get_metrics(trainer, module)
        metrics.pop("v_num", None)
        return metrics


class LogLines(_RunClock, Callback):
    """One plain line every ``every`` global steps on stderr (rank 0); ``every=0``: none."""

    def __init__(self, every: int, val_every: int, max_steps: Optional[int], max_minutes: Optional[float],
                 warmup_steps: int) -> None:
        self.every, self.val_every = every, val_every
        self._limits = (max_steps, max_minutes, warmup_steps)
        self._pending: Optional[int] = None  # a line that waits for this step's validation
        self._defer = True  # False once a validation that was due did not come (no validation split)

    def on_train_start(self, trainer, module) -> None:
        self._start_clock(trainer, module, *self._limits)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self._check_warmup(trainer, module)
        if self._pending is not None:  # the validation it waited for did not run: say it now
            self._pending, self._defer = None, False
            self._line(trainer, module)
        step = module.total_steps
        if not self.every or step % self.every or not trainer.is_global_zero:
            return
        if self._defer and (batch_idx + 1) % self.val_every == 0:  # Lightning validates right after this hook
            self._pending = step
        else:
            self._line(trainer, module)

    def on_validation_end(self, trainer, module) -> None:
        if self._pending is not None and self._pending == module.total_steps:
            self._line(trainer, module)
        self._pending = None

    def _line(self, trainer, module) -> None:
        step = module.total_steps
        now = time.monotonic()
        logged = trainer.callback_metrics
        loss = logged.get("train_loss")
        shown = {k: float(logged[k]) for k in SHOWN_METRICS if k in logged}
        note(log_line(step, self.budget.final_step(step, now), None if loss is None else float(loss), shown,
                      module.rate, module.rate_unit, self.budget.seconds_left(step, now)))


class EarlyStop(Callback):
    """``--patience N``: stop after N validations in a row without a lower validation loss.

    A small callback rather than a subclass of Lightning's ``EarlyStopping``: the rule and
    its saved state (:class:`~rnnkit.training.progress.Patience`) are shared with the NumPy
    engine and live in rnnkit's ``train_state.json`` (Lightning keeps its callback state in
    ``.ckpt`` pickles, which rnnkit neither writes nor loads). What matters under DDP is
    taken from Lightning: the decision is reduced across processes
    (``strategy.reduce_boolean_decision``), so every rank stops at the same step (the
    validation loss is already averaged over ranks, so they agree anyway).
    """

    def __init__(self, patience: Patience) -> None:
        self.patience = patience

    def on_validation_end(self, trainer, module) -> None:
        if trainer.sanity_checking or "val_loss" not in trainer.callback_metrics:
            return
        stop = self.patience.update(float(trainer.callback_metrics["val_loss"]), module.total_steps)
        stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if stop and not trainer.should_stop:
            self.patience.stopped_step = module.total_steps
            trainer.should_stop = True


def stderr_is_terminal() -> bool:
    """A bar redraws one line: only on a terminal (a log file gets plain lines)."""
    return sys.stderr.isatty()


def feedback_callbacks(run, warmup_steps: int, saved_meta: Optional[Dict[str, Any]]
                       ) -> Tuple[List[Callback], bool, Optional[Patience]]:
    """(callbacks, whether Lightning's progress bar is on, the early-stopping state) for ``run``
    (the RunConfig); ``saved_meta`` is a resumed run's train state."""
    limits = (run.max_steps, run.max_time, warmup_steps)
    bar = bool(run.progress) and stderr_is_terminal()
    cbs: List[Callback] = [ProgressBar(*limits) if bar else LogLines(run.log_every, run.val_every, *limits)]
    patience = patience_from(run, saved_meta)
    if patience is not None:
        cbs.append(EarlyStop(patience))
    return cbs, bar, patience

