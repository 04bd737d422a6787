"""run_to_completion: a cancelled caller leaves its step running, and the step's answer is kept."""

from __future__ import annotations

import asyncio
import logging

import pytest

from postwire_platform.uncancellable import detached_count, finish_detached, run_to_completion


async def test_an_uncancelled_caller_gets_the_result_and_the_exception() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    async def refuse() -> None:
        raise ValueError("no")

    assert await run_to_completion(answer()) == 42
    with pytest.raises(ValueError, match="no"):
        await run_to_completion(refuse())


async def test_the_step_outlives_its_cancelled_caller_and_shutdown_waits_for_it() -> None:
    recorded: list[str] = []
    started = asyncio.Event()
    release = asyncio.Event()

    async def call_then_record() -> str:
        started.set()
        await release.wait()
        recorded.append("answer")
        return "answer"

    caller = asyncio.create_task(run_to_completion(call_then_record(), name="provider call"))
    await started.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert detached_count() == 1 and not recorded
    asyncio.get_running_loop().call_later(0.05, release.set)
    await finish_detached(5)
    assert recorded == ["answer"] and detached_count() == 0


async def test_a_detached_step_that_fails_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    started = asyncio.Event()

    async def fail_later() -> None:
        started.set()
        await asyncio.sleep(0.01)
        raise ConnectionError("broker gone")

    caller = asyncio.create_task(run_to_completion(fail_later(), name="submit m1"))
    await started.wait()
    caller.cancel()
    with caplog.at_level(logging.WARNING, logger="postwire_platform.uncancellable"):
        with pytest.raises(asyncio.CancelledError):
            await caller
        await finish_detached(5)
        await asyncio.sleep(0)  # the done callbacks run on the next loop turn
    assert any("submit m1" in r.getMessage() and "broker gone" in r.getMessage()
               for r in caplog.records)


async def test_shutdown_gives_up_on_a_step_that_never_ends(caplog: pytest.LogCaptureFixture) -> None:
    forever = asyncio.Event()
    caller = asyncio.create_task(run_to_completion(forever.wait(), name="stuck call"))
    await asyncio.sleep(0.01)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    with caplog.at_level(logging.ERROR, logger="postwire_platform.uncancellable"):
        await finish_detached(0.05)
    assert any("still in flight" in r.getMessage() for r in caplog.records)
    forever.set()
    await finish_detached(5)
