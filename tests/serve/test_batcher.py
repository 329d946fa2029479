"""The micro-batcher on plain functions: gathering, limits, keys, order, error isolation."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from rnnkit.serve.batcher import MicroBatcher


def run(coro):
    return asyncio.run(coro)


def recording(fn=lambda key, items: [(key, x * 10) for x in items]):
    calls = []

    def wrapped(key, items):
        calls.append((key, list(items)))
        return fn(key, items)
    return wrapped, calls


def test_concurrent_requests_are_one_call_with_results_in_order():
    fn, calls = recording()
    b = MicroBatcher(fn, max_batch=32, wait_ms=50)

    async def main():
        return await asyncio.gather(*(b.submit([i, i + 100]) for i in range(5)))

    out = run(main())
    assert out == [[(None, i * 10), (None, (i + 100) * 10)] for i in range(5)]
    assert len(calls) == 1 and sorted(calls[0][1]) == sorted(x for i in range(5) for x in (i, i + 100))
    stats = b.stats.as_dict()
    assert stats.pop("model_seconds") >= 0 and stats.pop("model_cpu_seconds") >= 0
    assert stats == {"requests": 5, "batches": 1, "items": 10, "largest_batch": 10}


def test_max_batch_one_and_no_wait_runs_each_request_alone():
    fn, calls = recording()
    b = MicroBatcher(fn, max_batch=1, wait_ms=0)

    async def main():
        return await asyncio.gather(*(b.submit([i]) for i in range(6)))

    assert run(main()) == [[(None, i * 10)] for i in range(6)]
    assert [c[1] for c in calls] == [[i] for i in range(6)]


def test_max_batch_caps_a_call_but_never_splits_a_request():
    fn, calls = recording()
    b = MicroBatcher(fn, max_batch=4, wait_ms=50)

    async def main():
        return await asyncio.gather(b.submit([1, 2, 3]), b.submit([4, 5]), b.submit([6, 7, 8, 9, 10, 11]))

    out = run(main())
    assert out == [[(None, x * 10) for x in r] for r in ([1, 2, 3], [4, 5], [6, 7, 8, 9, 10, 11])]
    assert [c[1] for c in calls] == [[1, 2, 3], [4, 5], [6, 7, 8, 9, 10, 11]]


def test_requests_with_different_keys_never_share_a_call():
    fn, calls = recording()
    b = MicroBatcher(fn, max_batch=32, wait_ms=50)

    async def main():
        return await asyncio.gather(b.submit([1], key=1), b.submit([2], key=5), b.submit([3], key=1))

    assert run(main()) == [[(1, 10)], [(5, 20)], [(1, 30)]]
    assert sorted(calls) == [(1, [1, 3]), (5, [2])]


def test_wait_is_bounded_by_wait_ms():
    fn, calls = recording()
    b = MicroBatcher(fn, max_batch=32, wait_ms=30)

    async def main():
        t0 = time.perf_counter()
        await b.submit([1])
        return time.perf_counter() - t0

    took = run(main())
    assert 0.025 <= took < 1.0 and len(calls) == 1


def test_full_batch_does_not_wait():
    fn, calls = recording()
    b = MicroBatcher(fn, max_batch=3, wait_ms=5000)

    async def main():
        t0 = time.perf_counter()
        await asyncio.gather(*(b.submit([i]) for i in range(3)))
        return time.perf_counter() - t0

    assert run(main()) < 2.0 and len(calls) == 1


def test_a_failing_request_fails_alone():
    def fn(key, items):
        if "bad" in items:
            raise ValueError("bad item")
        return [x.upper() for x in items]

    b = MicroBatcher(fn, max_batch=32, wait_ms=50)

    async def main():
        return await asyncio.gather(b.submit(["a"]), b.submit(["bad"]), b.submit(["c", "d"]), return_exceptions=True)

    a, bad, cd = run(main())
    assert a == ["A"] and cd == ["C", "D"]
    assert isinstance(bad, ValueError) and str(bad) == "bad item"


def test_fn_runs_off_the_event_loop_thread():
    seen = []

    def fn(key, items):
        seen.append(threading.get_ident())
        return items

    b = MicroBatcher(fn, max_batch=2, wait_ms=0)

    async def main():
        loop_thread = threading.get_ident()
        await b.submit([1])
        return loop_thread

    loop_thread = run(main())
    assert len(seen) == 1 and seen[0] != loop_thread


def test_calls_queue_up_while_a_batch_runs():
    """wait_ms=0: nothing waits on purpose, but what arrives during a call is batched next."""
    def fn(key, items):
        time.sleep(0.05)
        return items

    fn, calls = recording(fn)
    b = MicroBatcher(fn, max_batch=32, wait_ms=0)

    async def main():
        first = asyncio.ensure_future(b.submit([0]))
        await asyncio.sleep(0.01)  # the first call is running now
        rest = await asyncio.gather(*(b.submit([i]) for i in range(1, 6)))
        return [await first] + rest

    assert run(main()) == [[i] for i in range(6)]
    assert [c[1] for c in calls] == [[0], [1, 2, 3, 4, 5]]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        MicroBatcher(lambda k, x: x, max_batch=0)
    with pytest.raises(ValueError):
        MicroBatcher(lambda k, x: x, wait_ms=-1)
