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

from ..reference.streams import StreamLayout


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
        if layout.n_windows < 1:
            from ..errors import DataError

            raise DataError(f"corpus too short for {world} processes x --batch-size {self.batch_size} streams of "
                            f"--seq-len {self.seq_len}: {len(self.train_ids)} training characters")
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


# ---------------------------------------------------------------------------------------
# independent examples (classification, forecasting windows, utterances, sentence pairs)


def bucketed_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator,
                     bucket_factor: int = 50) -> list:
    """Shuffle, then sort within buckets of ``bucket_factor`` batches by length, so a batch
    holds similar lengths (little padding); the batch order is shuffled again."""
    order = rng.permutation(len(lengths))
    chunk = batch_size * bucket_factor
    batches = []
    for i in range(0, len(order), chunk):
        part = order[i:i + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[j:j + batch_size] for j in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


class EpochBatches(IterableDataset):
    """Endless training batches of independent examples, resumable at ``(epoch, index)``.

    ``make_epoch(epoch)`` returns the list of index arrays of that pass (deterministic in
    the epoch, e.g. seeded shuffling or :func:`bucketed_batches`); ``collate(indices)``
    builds the batch dict. Under DDP, process ``rank`` takes every ``world``-th batch.
    """

    def __init__(self, make_epoch, collate, start: Tuple[int, int] = (0, 0), rank: int = 0,
                 world: int = 1) -> None:
        self.make_epoch, self.collate = make_epoch, collate
        self.start, self.rank, self.world = start, rank, world

    def __iter__(self) -> Iterator[dict]:
        epoch, index = self.start
        while True:
            batches = self.make_epoch(epoch)[self.rank::self.world]
            if not batches:
                raise ValueError("an epoch produced no batches (empty training split?)")
            while index < len(batches):
                yield {**self.collate(batches[index]), "epoch": epoch, "index": index, "reset": True}
                index += 1
            epoch, index = epoch + 1, 0


class FixedBatches(IterableDataset):
    """Evaluation batches in a fixed order (one pass)."""

    def __init__(self, batches: list, collate) -> None:
        self.batches, self.collate = batches, collate

    def __iter__(self) -> Iterator[dict]:
        for i, b in enumerate(self.batches):
            yield {**self.collate(b), "epoch": 0, "index": i, "reset": True}

    def __len__(self) -> int:
        return len(self.batches)


def loader(dataset: IterableDataset) -> DataLoader:
    """A DataLoader over ready-made batches that never touches the global torch RNG."""
    return DataLoader(dataset, batch_size=None, generator=_private_generator())
