"""What a training run tells its user while it runs, shared by both engines (torch-free).

* :class:`Budget`: where the run will end (``--max-steps`` or ``--max-time``, whichever
  comes first) and how long that takes at the speed measured so far;
* :func:`log_line`: the plain line printed every ``--log-every`` steps when there is no
  progress bar (``--no-progress``, or stderr is not a terminal);
* :class:`Patience`: early stopping (``--patience`` / ``--min-delta``) on the validation loss,
  with its state saved in ``train_state.json`` so that a resumed run continues the count;
* :func:`warmup_warning`: the one line that says a warm-up outlasts the run.

Everything here goes to stderr: stdout carries results only (the final ``done:`` line).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional


class Budget:
    """The end of a run and the time left, from the steps and seconds done in this process.

    ``max_steps`` counts global steps (across resumes); ``max_minutes`` is this process's
    time budget. The speed is the mean over this process (validation passes included, so
    the time left includes them too).
    """

    def __init__(self, max_steps: Optional[int], max_minutes: Optional[float], start_step: int,
                 now: Optional[float] = None) -> None:
        self.max_steps = max_steps
        self.start_step = start_step
        self.t0 = time.monotonic() if now is None else now
        self.deadline = None if max_minutes is None else self.t0 + 60.0 * max_minutes

    def rate(self, step: int, now: float) -> Optional[float]:
        """Steps per second so far (None before the first step)."""
        done, elapsed = step - self.start_step, now - self.t0
        return done / elapsed if done > 0 and elapsed > 0 else None

    def seconds_left(self, step: int, now: float) -> Optional[float]:
        """Time until the first budget ends (None while unknown)."""
        left = []
        if self.deadline is not None:
            left.append(max(0.0, self.deadline - now))
        rate = self.rate(step, now)
        if self.max_steps is not None and rate:
            left.append(max(0, self.max_steps - step) / rate)
        return min(left) if left else None

    def final_step(self, step: int, now: float) -> Optional[int]:
        """The global step the run is expected to end at (exact with --max-steps alone)."""
        ends = [] if self.max_steps is None else [self.max_steps]
        rate = self.rate(step, now)
        if self.deadline is not None and rate:
            ends.append(step + int(rate * max(0.0, self.deadline - now)))
        return min(ends) if ends else None


def format_seconds(s: Optional[float]) -> str:
    if s is None or not math.isfinite(s):
        return "?"
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def log_line(step: int, total: Optional[int], loss: Optional[float], metrics: Mapping[str, float],
             rate: Optional[float], unit: str, seconds_left: Optional[float]) -> str:
    """``step 40/200  loss 2.1234  val_loss 2.3456  1,234 tokens/s  0:01:23 left``."""
    parts = [f"step {step}" + (f"/{total}" if total else "")]
    if loss is not None:
        parts.append(f"loss {loss:.4f}")
    parts += [f"{k} {v:.4f}" for k, v in metrics.items()]
    if rate is not None:
        parts.append(f"{rate:,.0f} {unit}/s")
    parts.append(f"{format_seconds(seconds_left)} left")
    return "  ".join(parts)


def warmup_warning(warmup_steps: int, horizon: Optional[int], step: int) -> Optional[str]:
    """One line when the warm-up does not finish before the run ends (the learning rate
    never reaches --lr); None otherwise. rnnkit warns rather than rescaling the warm-up, so
    the schedule stays what the flags say and a resumed or longer run keeps it."""
    if not horizon or warmup_steps <= horizon or step >= warmup_steps:
        return None
    peak = min(1.0, horizon / warmup_steps)
    return (f"rnnkit: warning: the warm-up (--warmup-steps {warmup_steps}) is longer than the run "
            f"({horizon} steps): the learning rate only reaches {peak:.0%} of --lr; "
            f"lower --warmup-steps (e.g. {max(1, horizon // 10)})")


@dataclass
class Patience:
    """Early stopping on the validation loss (Keras' and Lightning's ``EarlyStopping`` rule).

    A check improves when ``value < best - min_delta``; after ``patience`` checks in a row
    without improvement, :meth:`update` says stop. The counter and the best value are saved
    with every checkpoint (:meth:`state`) and restored on resume (:meth:`restore`).
    """

    patience: int
    min_delta: float = 0.0
    best: float = math.inf
    best_step: Optional[int] = None
    bad_checks: int = 0
    stopped_step: Optional[int] = None

    def update(self, value: float, step: int) -> bool:
        if math.isfinite(value) and value < self.best - self.min_delta:
            self.best, self.best_step, self.bad_checks = float(value), step, 0
            return False
        self.bad_checks += 1
        return self.bad_checks >= self.patience

    def state(self) -> Dict[str, Any]:
        return {"patience": self.patience, "min_delta": self.min_delta, "bad_checks": self.bad_checks,
                "best": self.best if math.isfinite(self.best) else None, "best_step": self.best_step}

    def restore(self, saved: Optional[Mapping[str, Any]]) -> None:
        """Continue a saved count (a checkpoint without one: start afresh)."""
        if not saved:
            return
        self.best = math.inf if saved.get("best") is None else float(saved["best"])
        self.best_step = saved.get("best_step")
        self.bad_checks = int(saved.get("bad_checks", 0))

    def reason(self) -> str:
        delta = f" by more than --min-delta {self.min_delta:g}" if self.min_delta else ""
        best = "" if self.best_step is None else f" (best {self.best:.4f} at step {self.best_step})"
        return (f"stopped early at step {self.stopped_step}: the validation loss did not improve{delta} "
                f"in {self.bad_checks} validation(s) in a row (--patience {self.patience}){best}")


def patience_from(run, saved_meta: Optional[Mapping[str, Any]]) -> Optional[Patience]:
    """The --patience state of a run (``run``: its RunConfig): the flags, else those the
    resumed run was started with; a resumed run continues its saved count."""
    saved = (saved_meta or {}).get("early_stopping") or {}
    n = run.patience if run.patience is not None else saved.get("patience")
    if n is None:
        return None
    delta = run.min_delta if run.patience is not None else float(saved.get("min_delta", 0.0))
    p = Patience(int(n), delta)
    p.restore(saved)
    return p


def note(message: str) -> None:
    """A status line for the user: stderr, flushed (stdout is kept for results)."""
    print(message, file=sys.stderr, flush=True)
