"""A test's own view of the status events on the exchange (``event.status.#``)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from faststream.rabbit import RabbitBroker, RabbitQueue

from postwire_contracts.messages import StatusEvent, StatusEvents
from postwire_contracts.status import Status
from postwire_platform.broker import EXCHANGE, Publisher, contract_body, make_broker


class EventTap:
    """Every StatusEvent published on the exchange (those of a ``StatusEvents`` one by one), in
    arrival order, and a publisher to send with."""

    def __init__(self, broker: RabbitBroker) -> None:
        self.broker = broker
        self.publisher = Publisher(broker)
        self.events: list[StatusEvent] = []
        self.messages: list[StatusEvent | StatusEvents] = []
        """As published: single events and events published together (``events`` has them all)."""

    def of(self, message_id: str, status: Status | None = None) -> list[StatusEvent]:
        """The events of one message (optionally of one status)."""
        return [e for e in self.events
                if e.message_id == message_id and (status is None or e.status is status)]

    async def wait_count(self, count: int = 1, timeout: float = 10.0) -> list[StatusEvent]:
        """Wait (bounded) until ``count`` events arrived in all; return them."""
        deadline = time.monotonic() + timeout
        while len(self.events) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"expected {count} events, saw {self.events}")
            await asyncio.sleep(0.02)
        return list(self.events)

    async def wait_for(self, message_id: str, status: Status, count: int = 1,
                       timeout: float = 15.0) -> StatusEvent:
        """Wait (bounded) until ``count`` events of ``status`` arrived for the message; return the last."""
        deadline = time.monotonic() + timeout
        while len(self.of(message_id, status)) < count:
            if time.monotonic() > deadline:
                seen = [(e.status.value, e.event_id) for e in self.of(message_id)]
                raise TimeoutError(f"no {count}x {status} for {message_id}; saw {seen}")
            await asyncio.sleep(0.02)
        return self.of(message_id, status)[-1]

    def published_statuses(self) -> list[list[Status]]:
        """The statuses of each message as published: a lone event's, or a ``StatusEvents``' in
        order."""
        return [[e.status for e in (m.events if isinstance(m, StatusEvents) else [m])]
                for m in self.messages]

    async def expect_processing_then_sent(self, message_id: str, claimed_at: datetime, *,
                                          together: bool) -> None:
        """What a dispatcher's held PROCESSING must look like (the check each dispatcher's test
        shares): PROCESSING, timed at the claim, then SENT, in one ``StatusEvents`` (``together``)
        or in one message each, and nothing else published."""
        await self.wait_for(message_id, Status.SENT)
        assert [e.status for e in self.of(message_id)] == [Status.PROCESSING, Status.SENT]
        [processing] = self.of(message_id, Status.PROCESSING)
        assert processing.occurred_at == claimed_at
        assert self.published_statuses() == ([[Status.PROCESSING, Status.SENT]] if together
                                             else [[Status.PROCESSING], [Status.SENT]])


@asynccontextmanager
async def event_tap(amqp_url: str) -> AsyncIterator[EventTap]:
    """A broker of the test's own with an auto-deleted queue bound to ``event.status.#``."""
    broker = make_broker(amqp_url)
    tap = EventTap(broker)
    queue = RabbitQueue(f"test.events.{uuid.uuid4().hex[:8]}", routing_key="event.status.#",
                        auto_delete=True)

    @broker.subscriber(queue, EXCHANGE, decoder=contract_body(StatusEvent | StatusEvents))
    async def collect(message: StatusEvent | StatusEvents) -> None:
        tap.messages.append(message)
        tap.events.extend(message.events if isinstance(message, StatusEvents) else [message])

    await broker.start()
    try:
        yield tap
    finally:
        await broker.stop()
