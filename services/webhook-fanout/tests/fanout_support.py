"""Helpers of webhook-fanout's tests: the running service, a publisher, endpoints and notifications."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar.testing import AsyncTestClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts import topology
from postwire_contracts.messages import StatusChanged
from postwire_contracts.status import Channel, Status, webhook_event_type
from postwire_contracts.webhooks import WebhookCommand
from postwire_platform.broker import Publisher, declare_topology, make_broker
from postwire_platform.mongo import WEBHOOK_ATTEMPTS, Document
from postwire_platform.secrets_at_rest import Keyring, generate_key
from postwire_platform.webhook_store import create_endpoint
from postwire_testing.receiver import ReceivedRequest
from postwire_webhook_fanout.app import create_app
from postwire_webhook_fanout.settings import Settings

T0 = datetime(2026, 11, 21, 12, 0, 2, tzinfo=UTC)
SECRET_KEYS = [generate_key()]
KEYRING = Keyring(SECRET_KEYS)


@asynccontextmanager
async def running_fanout(amqp_url: str, mongodb_url: str, db_name: str, *,
                         resolver: Any = None, **overrides: Any) -> AsyncIterator[Publisher]:
    """webhook-fanout started with a short retry schedule; yields the test's own publisher."""
    settings = msgspec.structs.replace(
        Settings(amqp_url=amqp_url, mongodb_url=mongodb_url, mongodb_database=db_name,
                 log_json=False, secret_keys=SECRET_KEYS, webhook_retry_delays=[0.5, 1.0],
                 webhook_retry_jitter=0.0, webhook_timeout=5.0, webhook_allow_private=True,
                 webhook_defer_seconds=0.2, webhook_breaker_cooldown=1.0, webhook_order_wait=0.0,
                 retry_pause=0.2),
        **overrides)
    broker = make_broker(amqp_url)
    await broker.connect()
    await declare_topology(broker)
    app = create_app(settings) if resolver is None else create_app(settings, resolver=resolver)
    try:
        async with AsyncTestClient(app=app):
            yield Publisher(broker)
    finally:
        await broker.stop()


async def endpoint(db: AsyncDatabase[Document], tenant_id: str, url: str,
                   **kwargs: Any) -> tuple[str, Document]:
    """An endpoint stored as the gateway stores it (secret sealed); returns (secret, record)."""
    return await create_endpoint(db, KEYRING, tenant_id, url, **kwargs)


def note(tenant_id: str, status: Status = Status.DELIVERED, *, event_status: Status | None = None,
         message_id: str | None = None, live: bool = True,
         provider_message_id: str | None = "c-1") -> StatusChanged:
    """A notification as reporting publishes it."""
    event_status = event_status or status
    return StatusChanged(
        event_id=f"evt_{uuid.uuid4().hex}",
        event_type=webhook_event_type(Channel.SMS, event_status), tenant_id=tenant_id,
        message_id=message_id or f"msg{uuid.uuid4().hex[:20]}", channel=Channel.SMS,
        status=status, event_status=event_status, occurred_at=T0, recipient="+447700900123",
        live=live, provider_message_id=provider_message_id, metadata={"order": "42"},
        detail={"stat": "DELIVRD"} if event_status is Status.DELIVERED else {},
        error_code="UNDELIV" if event_status is Status.FAILED else None)


async def publish(publisher: Publisher, n: StatusChanged) -> None:
    await publisher.publish(n, topology.notify_key(n.channel), message_id=n.event_id)


async def command(publisher: Publisher, c: WebhookCommand) -> None:
    await publisher.publish(c, topology.FANOUT_COMMAND_KEY, message_id=c.command_id)


def count(n: int) -> Callable[[list[ReceivedRequest]], bool]:
    """A ``wait_for`` predicate: at least ``n`` requests arrived."""
    return lambda reqs: len(reqs) >= n


async def attempts(db: AsyncDatabase[Document], query: dict[str, Any], n: int, *,
                   timeout: float = 15.0) -> list[Document]:
    """At least ``n`` attempt records matching ``query`` (oldest first), waiting for them (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        docs = await db[WEBHOOK_ATTEMPTS].find(query).sort([("at", 1), ("_id", 1)]).to_list()
        if len(docs) >= n:
            return docs
        if loop.time() > deadline:
            raise AssertionError(f"fewer than {n} attempts match {query}: {len(docs)}")
        await asyncio.sleep(0.05)
