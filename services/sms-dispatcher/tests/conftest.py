"""sms-dispatcher fixtures."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from faststream.rabbit import RabbitQueue

from postwire_contracts.messages import StatusEvent
from postwire_platform.broker import EXCHANGE, make_broker

from .sms_support import EventTap


@pytest.fixture
async def tap(amqp_url: str) -> AsyncIterator[EventTap]:
    """A broker of the test's own with a queue bound to ``event.status.#``."""
    broker = make_broker(amqp_url)
    tap = EventTap(broker)
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
