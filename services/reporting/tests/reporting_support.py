"""Helpers of reporting's tests: a running service, a test-side broker, messages and events."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import msgspec
from faststream.rabbit import RabbitBroker, RabbitQueue
from litestar.testing import AsyncTestClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts import topology
from postwire_contracts.messages import (
    StatusChanged,
    StatusChanges,
    StatusEvent,
    StatusNotification,
    status_notification_decoder,
)
from postwire_contracts.status import Channel, Status
from postwire_platform.broker import EXCHANGE, Publisher, declare_topology, make_broker
from postwire_platform.ids import new_id
from postwire_platform.mongo import MESSAGES, Document
from postwire_reporting.app import create_app
from postwire_reporting.settings import Settings

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@asynccontextmanager
async def running_reporting(amqp_url: str, mongodb_url: str, db_name: str,
                            **overrides: object) -> AsyncIterator[None]:
    """The reporting app, started (broker consuming) for the duration."""
    settings = msgspec.structs.replace(
        Settings(amqp_url=amqp_url, mongodb_url=mongodb_url, mongodb_database=db_name,
                 log_json=False), **overrides)
    async with AsyncTestClient(app=create_app(settings)):
        yield


@dataclass
class Bus:
    """The test's own connection to RabbitMQ: a publisher and a queue of every notification."""

    broker: RabbitBroker
    publisher: Publisher
    notify_queue: str
    seen: list[StatusChanged] = field(default_factory=list)
    received: list[StatusNotification] = field(default_factory=list)
    """The AMQP messages as they came: single changes and batches (``seen`` has their changes)."""

    async def publish(self, event: StatusEvent) -> None:
        await self.publisher.publish(event, topology.status_key(event.channel),
                                     message_id=event.event_id)

    async def drain(self) -> list[StatusChanged]:
        """Every notification received so far (polls the test queue without waiting)."""
        queue = await self.broker.declare_queue(RabbitQueue(self.notify_queue, auto_delete=True))
        while (got := await queue.get(no_ack=True, fail=False)) is not None:
            note = status_notification_decoder.decode(got.body)
            self.received.append(note)
            self.seen.extend(note.changes if isinstance(note, StatusChanges) else [note])
        return self.seen

    async def notes_for(self, message_id: str) -> list[StatusChanged]:
        return [n for n in await self.drain() if n.message_id == message_id]


@asynccontextmanager
async def bus(amqp_url: str) -> AsyncIterator[Bus]:
    """Connect a test broker, declare the topology and bind a private queue to ``notify.#``."""
    broker = make_broker(amqp_url)
    await broker.connect()
    await declare_topology(broker)
    name = f"test.notify.{uuid.uuid4().hex[:8]}"
    queue = await broker.declare_queue(RabbitQueue(name, auto_delete=True))
    exchange = await broker.declare_exchange(EXCHANGE)
    await queue.bind(exchange, routing_key=topology.NOTIFY_PATTERN)
    try:
        yield Bus(broker, Publisher(broker), name)
    finally:
        await broker.stop()


async def insert_message(db: AsyncDatabase[Document], *, tenant_id: str = "ten_test",
                         status: Status = Status.QUEUED, provider_message_id: str | None = None,
                         to: str = "+447700900123") -> str:
    """A stored SMS as the gateway writes it (QUEUED, one timeline entry)."""
    mid = new_id()
    doc: Document = {
        "_id": mid, "tenant_id": tenant_id, "channel": "sms", "live": False, "status": status.value,
        "to": to, "body": "hello", "sender_id": "Postwire", "flow": "STANDARD",
        "metadata": {"order": "42"}, "external_id": None, "accepted_at": T0, "updated_at": T0,
        "published": True,
        "timeline": [{"event_id": f"{mid}:queued", "status": "QUEUED", "occurred_at": T0,
                      "recorded_at": T0, "source": "gateway", "detail": {}}],
    }
    if provider_message_id:
        doc["provider_message_id"] = provider_message_id
    await db[MESSAGES].insert_one(doc)
    return mid


def event(status: Status, *, message_id: str | None = None, provider_id: str | None = None,
          seconds: float = 1, event_id: str | None = None, **extra: object) -> StatusEvent:
    """A status event of an SMS, ``seconds`` after T0."""
    return StatusEvent(
        event_id=event_id or f"evt:{uuid.uuid4().hex}", channel=Channel.SMS, status=status,
        occurred_at=T0 + timedelta(seconds=seconds), source="test", message_id=message_id,
        provider_message_id=provider_id, **extra)  # type: ignore[arg-type]


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    """Bounded poll until ``check`` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.05)


async def message(db: AsyncDatabase[Document], mid: str) -> Document:
    doc = await db[MESSAGES].find_one({"_id": mid})
    assert doc is not None
    return doc


def has_timeline(db: AsyncDatabase[Document], mid: str, n: int) -> Callable[[], Awaitable[bool]]:
    """A check for ``eventually``: the message's timeline has ``n`` entries."""
    async def check() -> bool:
        return len((await message(db, mid))["timeline"]) >= n
    return check
