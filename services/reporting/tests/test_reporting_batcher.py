"""The micro-batcher on its own: batching, failures reaching every caller, poison isolation."""

from __future__ import annotations

import asyncio

import pytest
from pymongo.errors import AutoReconnect

from postwire_reporting.batcher import BatcherStopped, MicroBatcher
from postwire_reporting.recorder import is_transient


async def test_concurrent_callers_share_batches_up_to_the_limit() -> None:
    seen: list[list[int]] = []

    async def process(items: list[int]) -> None:
        seen.append(items)
        await asyncio.sleep(0.01)

    batcher: MicroBatcher[int] = MicroBatcher(process, max_items=10, max_wait=0.05,
                                              is_transient=is_transient)
    batcher.start()
    await asyncio.gather(*(batcher.submit(n) for n in range(35)))
    await batcher.stop()
    assert sorted(n for batch in seen for n in batch) == list(range(35))
    assert max(len(b) for b in seen) == 10 and len(seen) <= 5


async def test_a_transient_failure_reaches_every_caller_of_the_batch() -> None:
    async def process(items: list[int]) -> None:
        raise AutoReconnect("mongo is down")

    batcher: MicroBatcher[int] = MicroBatcher(process, max_items=10, max_wait=0.02,
                                              is_transient=is_transient)
    batcher.start()
    results = await asyncio.gather(*(batcher.submit(n) for n in range(5)), return_exceptions=True)
    await batcher.stop()
    assert all(isinstance(r, AutoReconnect) for r in results)


async def test_a_poisonous_item_fails_alone() -> None:
    async def process(items: list[int]) -> None:
        if 3 in items:
            raise ValueError("cannot record 3")

    batcher: MicroBatcher[int] = MicroBatcher(process, max_items=10, max_wait=0.02,
                                              is_transient=is_transient)
    batcher.start()
    results = await asyncio.gather(*(batcher.submit(n) for n in range(6)), return_exceptions=True)
    await batcher.stop()
    assert [isinstance(r, ValueError) for r in results] == [False, False, False, True, False, False]


async def test_submitting_to_a_stopped_batcher_fails_fast() -> None:
    async def process(items: list[int]) -> None:
        return None

    batcher: MicroBatcher[int] = MicroBatcher(process, max_items=10, max_wait=0.02,
                                              is_transient=is_transient)
    with pytest.raises(BatcherStopped):
        await batcher.submit(1)
