"""Per-task training recipes: how a task turns its config into data, a model and a final score.

A recipe module exposes ``prepare(cfg, saved_data, start) -> Prepared``:

* ``cfg``: the run's :class:`~rnnkit.training.config.TrainConfig`;
* ``saved_data``: the ``data`` section of the checkpoint being resumed (vocabulary,
  scalers, ...), or ``None`` for a fresh run; the recipe must reuse it;
* ``start``: the saved data position to continue from, or ``None``.

The generic loop in :mod:`rnnkit.training.run` does everything else (optimizer, schedule,
checkpoints, resume, budgets, logging), so a new task adds a recipe, its config
dataclasses in ``training/config.py`` and its head in ``tasks/``, nothing more.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional

RECIPES = {"charlm": "rnnkit.training.recipes.charlm",
           "sentiment": "rnnkit.training.recipes.sentiment",
           "seq2seq": "rnnkit.training.recipes.seq2seq",
           "asr": "rnnkit.training.recipes.asr",
           "forecast": "rnnkit.training.recipes.forecast"}


@dataclass
class Prepared:
    datamodule: Any  # a LightningDataModule whose training batches carry "epoch"/"index"/"reset"
    encoder: Any
    task: Any
    data_config: Dict[str, Any]  # saved as config.json "data" (vocabulary, scalers, columns)
    final_eval: Optional[Callable[[Any], Dict[str, float]]] = None  # module -> metrics at the end
    info: Dict[str, Any] = field(default_factory=dict)  # printed at start (sizes, splits)


def get_recipe(task: str):
    from ...errors import ConfigError

    if task not in RECIPES:
        raise ConfigError(f"task {task!r} has no training recipe (available: {', '.join(RECIPES)})")
    return importlib.import_module(RECIPES[task])
