"""Lightning data modules: training windows as an endless stream, validation as one pass.

Training data is an :class:`~torch.utils.data.IterableDataset` that yields whole batches
``{"x": (B, T), "y": (B, T), "epoch", "index", "reset"}`` in stream order from a given
position, forever (the trainer's step/time budget ends the run). ``reset`` is true on the
first window of each pass, where the carried state must start afresh. Under DDP each
process reads its own ``B`` streams (``world_size * B`` in all), so no sampler is involved
and a resumed run continues from ``(epoch, index)`` exactly.
"""

from __future__ import annotations

from typing import Iterator, Optional, Tuple

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from ..data.streams import StreamLayout


class TrainWindows(IterableDataset):
    def __init__(self, ids: np.ndarray, layout: StreamLayout, rows: slice,
                 start: Tuple[int, int] = (0, 0)) -> None:
        self.ids, self.layout, self.rows, self.start = ids, layout, rows, start

    def __iter__(self) -> Iterator[dict]:
        epoch, index = self.start
        while True:
            if index >= self.layout.n_windows:
                epoch, index = epoch + 1, 0
            x, y = self.layout.window(self.ids, index, self.rows)
            yield {"x": torch.from_numpy(x), "y": torch.from_numpy(y),
                   "epoch": epoch, "index": index, "reset": index == 0}
            index += 1


class EvalWindows(IterableDataset):
    def __init__(self, ids: np.ndarray, layout: StreamLayout) -> None:
        self.ids, self.layout = ids, layout

    def __iter__(self) -> Iterator[dict]:
        for index in range(self.layout.n_windows):
            x, y = self.layout.window(self.ids, index)
            yield {"x": torch.from_numpy(x), "y": torch.from_numpy(y),
                   "epoch": 0, "index": index, "reset": index == 0}

    def __len__(self) -> int:
        return self.layout.n_windows


class StreamDataModule(L.LightningDataModule):
    """Contiguous-stream batches over a train/validation split of token ids."""

    def __init__(self, train_ids: np.ndarray, val_ids: Optional[np.ndarray], batch_size: int,
                 seq_len: int, start: Tuple[int, int] = (0, 0), val_streams: int = 16) -> None:
        super().__init__()
        self.train_ids, self.val_ids = train_ids, val_ids
        self.batch_size, self.seq_len, self.start = batch_size, seq_len, start
        self.val_streams = val_streams

    def train_layout(self, world_size: int = 1) -> StreamLayout:
        return StreamLayout(len(self.train_ids), self.batch_size * world_size, self.seq_len)

    def train_dataloader(self) -> DataLoader:
        world, rank = self.trainer.world_size, self.trainer.global_rank
        layout = self.train_layout(world)
        rows = slice(rank * self.batch_size, (rank + 1) * self.batch_size)
        return DataLoader(TrainWindows(self.train_ids, layout, rows, self.start), batch_size=None,
                          generator=_private_generator())

    def val_dataloader(self) -> DataLoader:
        if self.val_ids is None or len(self.val_ids) < 2:
            return []
        streams = max(1, min(self.val_streams, (len(self.val_ids) - 1) // max(1, self.seq_len)))
        layout = StreamLayout(len(self.val_ids), streams, self.seq_len, drop_last=False)
        return DataLoader(EvalWindows(self.val_ids, layout), batch_size=None, generator=_private_generator())


def _private_generator() -> torch.Generator:
    """DataLoader iterators draw a seed from their generator on creation; with the default
    (global) one, every validation pass would shift the dropout RNG and break exact resume."""
    return torch.Generator().manual_seed(0)
