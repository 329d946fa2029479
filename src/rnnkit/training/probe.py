"""Probes for ``rnnkit diagnose ... CKPT`` of every task: a trained model and real batches.

charlm has its own probe in :mod:`rnnkit.diagnostics.experiments` (windows of any text,
``--seq-len``, a loss on the last step or on all). Every other task is probed through its
training recipe: the checkpoint's own data settings rebuild the validation split exactly as
training saw it, and the task's own loss (``task.loss``) is differentiated on those batches,
so no task needs diagnostics code of its own. This lives in ``training`` because the recipes
do (``diagnostics`` never imports ``training``).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Optional, Tuple

import numpy as np
import torch
from torch import nn

from .. import checkpoint as ckpt_io
from ..diagnostics import experiments as ex
from ..errors import ConfigError, DataError

PROBE_BATCHES = 8  # validation batches a probe keeps (the exploding experiment samples among them)


def load_probe(path, data: Optional[str], seq_len: int, batch_size: int, loss: str) -> Tuple[Any, ex.Probe]:
    """(checkpoint, probe) for a checkpoint of any task (see the module doc)."""
    from .recipes import RECIPES

    task = ckpt_io.read_config(Path(path), expect_task=list(RECIPES))["task"]
    if task in ex.PROBES:
        return ex._load_probe(path, data, seq_len, batch_size, loss)
    if data is not None:
        raise ConfigError(f"{path}: --data picks the text of a charlm checkpoint; a {task} checkpoint is "
                          f"probed on its own validation split")
    return _recipe_probe(path, task)


def _recipe_probe(path, task: str) -> Tuple[Any, ex.Probe]:
    from .config import config_from_dict
    from .recipes import get_recipe

    ckpt = ckpt_io.load_checkpoint(Path(path), expect_task=[task])
    cfg = config_from_dict({"task": task, **ckpt.config.get("train", {})})
    prep = get_recipe(task).prepare(cfg, ckpt.config["data"], None)
    model = nn.ModuleDict({"encoder": prep.encoder, "task": prep.task})
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ckpt.weights.items()})
    model.eval()
    batches = list(itertools.islice(iter(prep.datamodule.val_dataloader()), PROBE_BATCHES))
    if not batches:
        raise DataError(f"{path}: the {task} checkpoint's data has no validation split to probe")

    def batch_at(i: int):
        batch = dict(batches[i])
        x, lengths = prep.task.inputs(batch)  # (B, T, C): the task's own front end
        return x.detach(), lengths, lambda y: prep.task.loss(y, batch)[0]

    x, lengths, loss_fn = batch_at(0)
    return ckpt, ex.Probe(prep.encoder, model, x, lengths, loss_fn, f"{task} validation split",
                          lambda rng: batch_at(int(rng.integers(len(batches)))),
                          loss_name=f"the {task} task's training loss")
