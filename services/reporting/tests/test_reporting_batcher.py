"""The micro-batcher on its own: batching, failures reaching every caller, poison isolation."""

from __future__ import annotations

import asyncio

import pytest
from pymongo.errors import AutoReconnect

from postwire_reporting.batcher import BatcherStopped, MicroBatcher, Tail
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


async def test_the_next_batch_is_processed_while_a_tail_runs_and_callers_wait_for_their_tail(
        ) -> None:
    log: list[str] = []
    tail_gates: list[asyncio.Event] = []

    async def process(items: list[int]) -> Tail:
        log.append(f"head {items}")
        gate = asyncio.Event()
        tail_gates.append(gate)

        async def tail() -> None:
            log.append(f"tail {items} starts")
            await gate.wait()
            log.append(f"tail {items} ends")

        return tail

    batcher: MicroBatcher[int] = MicroBatcher(process, max_items=1, max_wait=0.0,
                                              is_transient=is_transient)
    batcher.start()
    first = asyncio.create_task(batcher.submit(1))
    second = asyncio.create_task(batcher.submit(2))
    third = asyncio.create_task(batcher.submit(3))
    for _ in range(50):
        await asyncio.sleep(0.001)
    # batch 2's head ran beside batch 1's tail; batch 3 waits: one tail at a time
    assert sorted(log) == ["head [1]", "head [2]", "tail [1] starts"]
    assert not first.done() and not second.done()
    tail_gates[0].set()
    await first
    for _ in range(50):
        await asyncio.sleep(0.001)
    assert log[3] == "tail [1] ends"
    assert sorted(log[4:]) == ["head [3]", "tail [2] starts"]
    assert not second.done(), "a batch's callers are answered after its tail"
    tail_gates[1].set()
    await second
    for _ in range(50):
        await asyncio.sleep(0.001)
    assert log[6:] == ["tail [2] ends", "tail [3] starts"] and not third.done()
    tail_gates[2].set()
    await third
    await batcher.stop()


async def test_a_failing_tail_fails_its_callers_and_a_poisonous_item_still_fails_alone() -> None:
    async def process(items: list[int]) -> Tail:
        async def tail() -> None:
            if 13 in items:
                raise AutoReconnect("mongo went away during the ledger write")
            if 3 in items:
                raise ValueError("cannot record 3")

        return tail

    batcher: MicroBatcher[int] = MicroBatcher(process, max_items=10, max_wait=0.02,
                                              is_transient=is_transient)
    batcher.start()
    results = await asyncio.gather(*(batcher.submit(n) for n in range(6)), return_exceptions=True)
    assert [isinstance(r, ValueError) for r in results] == [False, False, False, True, False, False]
    transient = await asyncio.gather(*(batcher.submit(n) for n in (12, 13)),
                                     return_exceptions=True)
    assert all(isinstance(r, AutoReconnect) for r in transient)
    await batcher.stop()


async def test_stopping_waits_for_the_tail_under_way() -> None:
    done: list[int] = []

    async def process(items: list[int]) -> Tail:
        async def tail() -> None:
            await asyncio.sleep(0.05)
            done.extend(items)

        return tail

    batcher: MicroBatcher[int] = MicroBatcher(process, max_items=10, max_wait=0.0,
                                              is_transient=is_transient)
    batcher.start()
    submitted = asyncio.create_task(batcher.submit(7))
    await asyncio.sleep(0.01)
    await batcher.stop(timeout=2.0)
    assert done == [7]
    await submitted
