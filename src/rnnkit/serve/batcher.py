"""Micro-batching: concurrent calls for one model gathered into one call of its batched method.

One :class:`MicroBatcher` per model: an asyncio worker task takes the first waiting request,
keeps gathering until ``max_batch`` items are waiting or ``wait_ms`` has passed since that
first request, then runs ``fn(key, items)`` **in a thread** (the event loop stays free to
accept requests) for each group of requests with the same ``key`` (e.g. the beam width: only
requests asking for the same decoding share a call). Each request gets back the slice of the
results that belongs to it, in order.

``max_batch=1, wait_ms=0`` runs every request on its own ("unbatched"). ``wait_ms=0`` with a
larger ``max_batch`` still batches what queued up while the previous call ran, without ever
waiting on purpose. A request with more items than ``max_batch`` runs whole, in one call.

If a batched call raises, each request of the group is retried on its own, so one bad request
fails alone and never takes its neighbours down with it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Hashable, List, Optional, Sequence, Tuple


@dataclass
class BatchStats:
    """What a batcher has done: requests answered, calls made, items processed, largest call,
    seconds spent inside the batched calls (wall clock, and CPU of the calling thread: torch
    with one thread computes in it)."""

    requests: int = 0
    batches: int = 0
    items: int = 0
    largest: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    def as_dict(self) -> Dict[str, Any]:
        return {"requests": self.requests, "batches": self.batches, "items": self.items, "largest_batch": self.largest,
                "model_seconds": round(self.seconds, 4), "model_cpu_seconds": round(self.cpu_seconds, 4)}


@dataclass
class _Pending:
    key: Hashable
    items: Sequence[Any]
    future: "asyncio.Future[List[Any]]"


@dataclass
class MicroBatcher:
    """Gather concurrent :meth:`submit` calls into calls of ``fn(key, items) -> results``
    (``len(results) == len(items)``)."""

    fn: Callable[[Hashable, List[Any]], Sequence[Any]]
    max_batch: int = 32
    wait_ms: float = 5.0
    stats: BatchStats = field(default_factory=BatchStats)
    _pending: List[_Pending] = field(default_factory=list, init=False)
    _count: int = field(default=0, init=False)
    _wakeup: Optional[asyncio.Event] = field(default=None, init=False)
    _worker: Optional["asyncio.Task[None]"] = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.wait_ms < 0:
            raise ValueError(f"max_batch must be >= 1 and wait_ms >= 0, got {self.max_batch}, {self.wait_ms}")

    async def submit(self, items: Sequence[Any], key: Hashable = None) -> List[Any]:
        """The results for ``items`` (computed together with whatever else is waiting)."""
        if not items:
            return []
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done():
            self._wakeup = asyncio.Event()
            self._worker = loop.create_task(self._run())
        fut: asyncio.Future[List[Any]] = loop.create_future()
        self._pending.append(_Pending(key, list(items), fut))
        self._count += len(items)
        assert self._wakeup is not None
        self._wakeup.set()
        return await fut

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None

    def _take(self) -> List[_Pending]:
        """The oldest requests, up to ``max_batch`` items (always at least one request)."""
        batch, n = [], 0
        while self._pending and (not batch or n + len(self._pending[0].items) <= self.max_batch):
            p = self._pending.pop(0)
            batch.append(p)
            n += len(p.items)
        self._count -= n
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wakeup is not None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if not self._pending:
                continue
            deadline = loop.time() + self.wait_ms / 1000.0
            while self._count < self.max_batch and (left := deadline - loop.time()) > 0:
                try:
                    await asyncio.wait_for(self._wakeup.wait(), left)
                except asyncio.TimeoutError:
                    break
                self._wakeup.clear()
            batch = self._take()
            if self._pending:
                self._wakeup.set()  # more is waiting: go round again at once
            groups: Dict[Hashable, List[_Pending]] = {}
            for p in batch:
                groups.setdefault(p.key, []).append(p)
            for key, reqs in groups.items():
                await self._run_group(key, reqs)

    def _timed(self, key: Hashable, items: List[Any]) -> Sequence[Any]:
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            return self.fn(key, items)
        finally:
            self.stats.seconds += time.perf_counter() - t0
            self.stats.cpu_seconds += time.thread_time() - c0

    async def _call(self, key: Hashable, items: List[Any]) -> Sequence[Any]:
        results = await asyncio.to_thread(self._timed, key, items)
        if len(results) != len(items):
            raise RuntimeError(f"batched call returned {len(results)} results for {len(items)} items")
        self.stats.batches += 1
        self.stats.items += len(items)
        self.stats.largest = max(self.stats.largest, len(items))
        return results

    async def _run_group(self, key: Hashable, reqs: List[_Pending]) -> None:
        flat = [x for p in reqs for x in p.items]
        try:
            results = await self._call(key, flat)
        except Exception as e:  # noqa: BLE001 - handed to the requests, never lost
            if len(reqs) == 1:
                _resolve(reqs[0].future, error=e)
                self.stats.requests += 1
                return
            for p in reqs:  # isolate the request that failed
                try:
                    _resolve(p.future, list(await self._call(key, list(p.items))))
                except Exception as e1:  # noqa: BLE001
                    _resolve(p.future, error=e1)
                self.stats.requests += 1
            return
        start = 0
        for p in reqs:
            _resolve(p.future, list(results[start:start + len(p.items)]))
            start += len(p.items)
            self.stats.requests += 1


def _resolve(fut: "asyncio.Future[Any]", value: Any = None, error: Optional[BaseException] = None) -> None:
    if fut.done():  # the client went away and its request was cancelled
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(value)


__all__: Tuple[str, ...] = ("MicroBatcher", "BatchStats")
