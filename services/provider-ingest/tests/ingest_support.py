"""provider-ingest test kit: a tap on ``event.status.#`` and the app running against the real broker."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from faststream.rabbit import RabbitQueue

from postwire_contracts.messages import StatusEvent
from postwire_platform.broker import EXCHANGE, make_broker


class EventTap:
    """Every StatusEvent published on the exchange, in arrival order."""

    def __init__(self) -> None:
        self.events: list[StatusEvent] = []

    async def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[StatusEvent]:
        """Wait until ``count`` events arrived; return them all."""
        deadline = time.monotonic() + timeout
        while len(self.events) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"expected {count} events, saw {self.events}")
            await asyncio.sleep(0.02)
        return list(self.events)


@asynccontextmanager
async def event_tap(amqp_url: str) -> AsyncIterator[EventTap]:
    """A broker of the test's own with an exclusive queue bound to ``event.status.#``."""
    broker = make_broker(amqp_url)
    tap = EventTap()
    queue = RabbitQueue(f"test.events.{uuid.uuid4().hex[:8]}", routing_key="event.status.#",
                        auto_delete=True)

    @broker.subscriber(queue, EXCHANGE)
    async def collect(event: StatusEvent) -> None:
        tap.events.append(event)

    await broker.start()
    try:
        yield tap
    finally:
        await broker.stop()
