"""The group-commit helper: concurrent callers share one call of ``process``, each gets its own result."""

from __future__ import annotations

import asyncio

import pytest

from postwire_platform.batching import Coalescer


async def test_concurrent_callers_share_batches_and_get_their_own_results() -> None:
    calls: list[list[int]] = []

    async def process(items: list[int]) -> list[int]:
        calls.append(list(items))
        await asyncio.sleep(0)  # a round trip: callers arriving meanwhile wait for the next batch
        return [i * 10 for i in items]

    coalescer: Coalescer[int, int] = Coalescer(process, max_batch=50)
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(120)))
    assert results == [i * 10 for i in range(120)]
    assert sorted(i for call in calls for i in call) == list(range(120))
    assert 3 <= len(calls) < 120 and all(len(call) <= 50 for call in calls)


async def test_a_per_item_error_reaches_only_its_caller() -> None:
    async def process(items: list[int]) -> list[int | BaseException]:
        return [ValueError(f"bad {i}") if i % 2 else i for i in items]

    coalescer: Coalescer[int, int] = Coalescer(process)
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(6)), return_exceptions=True)
    assert [r if isinstance(r, int) else str(r) for r in results] == [0, "bad 1", 2, "bad 3", 4, "bad 5"]


async def test_a_failed_batch_fails_every_caller_and_the_next_batch_still_runs() -> None:
    fail = True

    async def process(items: list[int]) -> list[int]:
        if fail:
            raise ConnectionError("database down")
        return items

    coalescer: Coalescer[int, int] = Coalescer(process)
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    fail = False
    assert await coalescer.submit(7) == 7


async def test_a_wrong_number_of_results_is_an_error_not_a_silent_mismatch() -> None:
    async def process(items: list[int]) -> list[int]:
        return items[:-1]

    coalescer: Coalescer[int, int] = Coalescer(process)
    with pytest.raises(RuntimeError, match="results for"):
        await coalescer.submit(1)
