"""Helpers of webhook-fanout's tests: the running service, a publisher and notifications."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import msgspec
from litestar.testing import AsyncTestClient

from postwire_contracts import topology
from postwire_contracts.messages import StatusChanged
from postwire_contracts.status import Channel, Status, webhook_event_type
from postwire_platform.broker import Publisher, declare_topology, make_broker
from postwire_webhook_fanout.app import create_app
from postwire_webhook_fanout.settings import Settings

T0 = datetime(2026, 11, 21, 12, 0, 2, tzinfo=UTC)


@asynccontextmanager
async def running_fanout(amqp_url: str, mongodb_url: str, db_name: str,
                         **overrides: object) -> AsyncIterator[Publisher]:
    """webhook-fanout started with a short retry schedule; yields the test's own publisher."""
    settings = msgspec.structs.replace(
        Settings(amqp_url=amqp_url, mongodb_url=mongodb_url, mongodb_database=db_name,
                 log_json=False, webhook_retry_delays=[0.5, 1.0], webhook_timeout=5.0,
                 retry_pause=0.2), **overrides)
    broker = make_broker(amqp_url)
    await broker.connect()
    await declare_topology(broker)
    try:
        async with AsyncTestClient(app=create_app(settings)):
            yield Publisher(broker)
    finally:
        await broker.stop()


def note(tenant_id: str, status: Status = Status.DELIVERED, *,
         event_status: Status | None = None) -> StatusChanged:
    """A notification as reporting publishes it."""
    event_status = event_status or status
    return StatusChanged(
        event_id=f"evt_{uuid.uuid4().hex}",
        event_type=webhook_event_type(Channel.SMS, event_status), tenant_id=tenant_id,
        message_id=f"msg{uuid.uuid4().hex[:20]}", channel=Channel.SMS, status=status,
        event_status=event_status, occurred_at=T0, recipient="+447700900123",
        provider_message_id="c-1", metadata={"order": "42"},
        error_code="UNDELIV" if event_status is Status.FAILED else None)


async def publish(publisher: Publisher, n: StatusChanged) -> None:
    await publisher.publish(n, topology.notify_key(n.channel), message_id=n.event_id)
