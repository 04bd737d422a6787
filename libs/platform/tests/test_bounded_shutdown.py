"""A shutdown step that ignores its cancellation cannot hang a service's exit."""

from __future__ import annotations

import asyncio

import pytest

from postwire_platform.service import _bounded


async def test_a_step_that_swallows_cancellation_is_given_up_on() -> None:
    release = asyncio.Event()

    async def stubborn_close() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue  # as a close deep in a client library may

    waited = asyncio.create_task(_bounded(stubborn_close(), 0.2, "stubborn"))
    done, _ = await asyncio.wait({waited}, timeout=5)
    release.set()
    assert waited in done  # returned after its 0.2 s, though the step never finished


async def test_a_step_that_fails_still_raises() -> None:
    async def failing() -> None:
        raise RuntimeError("close failed")

    with pytest.raises(RuntimeError, match="close failed"):
        await _bounded(failing(), 1.0, "failing")
