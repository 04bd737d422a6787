"""email-dispatcher fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from postwire_testing.taps import EventTap, event_tap


@pytest.fixture
async def tap(amqp_url: str) -> AsyncIterator[EventTap]:
    """A broker of the test's own with a queue bound to ``event.status.#``."""
    async with event_tap(amqp_url) as t:
        yield t
