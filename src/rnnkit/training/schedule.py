"""The learning-rate schedule shared by both training engines (torch-free)."""

from __future__ import annotations

import math
from typing import Optional


def lr_factor(step: int, warmup_steps: int, schedule: str, horizon: Optional[int],
              min_lr_ratio: float) -> float:
    """Multiplier of the peak learning rate for the update after ``step`` completed steps.

    Linear warm-up over ``warmup_steps``, then constant or cosine decay to ``min_lr_ratio``
    at ``horizon`` total steps (constant while the horizon is unknown).
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant" or not horizon:
        return 1.0
    span = max(1, horizon - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
