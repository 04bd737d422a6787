"""Webhook deliveries through the gateway: attempt lists, replays and test events (as commands)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import pytest
from litestar.testing import AsyncTestClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts import topology
from postwire_contracts.webhooks import (
    ReplayDelivery,
    ReplayFailed,
    SendTestEvent,
    WebhookCommand,
    command_decoder,
    webhook_id,
)
from postwire_platform.mongo import Document

from .gateway_support import Tenant, make_tenant
from .webhook_support import PATH, PUBLIC, hooks_key

Client = AsyncTestClient[Any]
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


class Commands:
    """webhook-fanout's command queue, read directly to see what the gateway asked for."""

    def __init__(self, queue: aio_pika.abc.AbstractQueue) -> None:
        self.queue = queue

    async def take(self, timeout: float = 5.0) -> WebhookCommand:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            message = await self.queue.get(no_ack=True, fail=False)
            if message is not None:
                return command_decoder.decode(message.body)
            await asyncio.sleep(0.05)
        raise AssertionError("no command published")

    async def none(self) -> bool:
        await asyncio.sleep(0.3)
        return await self.queue.get(no_ack=True, fail=False) is None


@pytest.fixture
async def commands(client: Client, amqp_url: str) -> AsyncIterator[Commands]:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(topology.FANOUT_COMMAND_QUEUE, ensure=True)
        await queue.purge()
        yield Commands(queue)
    finally:
        await connection.close()


def attempt(endpoint_id: str, tenant_id: str, n: int, *, message_id: str = "msg_1",
            outcome: str = "delivered", event_id: str = "evt_1") -> Document:
    """An attempt record as webhook-fanout writes it."""
    at = T0 + timedelta(seconds=n)
    return {"_id": f"wa_{endpoint_id}_{n}", "endpoint_id": endpoint_id, "tenant_id": tenant_id,
            "message_id": message_id, "event_id": event_id, "event_type": "sms_delivered",
            "webhook_id": webhook_id(event_id, endpoint_id), "attempt": n, "trigger": "event",
            "run": "", "at": at, "status_code": 200 if outcome == "delivered" else 503,
            "latency_ms": 12, "error": None if outcome == "delivered" else "HTTP 503",
            "outcome": outcome, "live": True, "occurred_at": T0, "body": "{}",
            "expires_at": at + timedelta(days=30)}


async def new_endpoint(client: Client, auth: dict[str, str], **body: Any) -> str:
    created = await client.post(PATH, headers=auth, json={"url": PUBLIC, **body})
    assert created.status_code == 201, created.text
    return str(created.json()["data"]["id"])


async def test_attempts_per_endpoint_and_per_message(client: Client, tenant: Tenant,
                                                     db: AsyncDatabase[Document]) -> None:
    auth = await hooks_key(db, tenant.id)
    one = await new_endpoint(client, auth)
    two = await new_endpoint(client, auth)
    other = await make_tenant(db, "Other")
    await db["webhook_attempts"].insert_many([
        attempt(one, tenant.id, 1, outcome="retrying"), attempt(one, tenant.id, 2),
        attempt(two, tenant.id, 3), attempt(one, tenant.id, 4, message_id="msg_2", event_id="e2"),
        attempt("we_theirs", other.id, 5)])

    listed = await client.get(f"{PATH}/{one}/attempts", headers=auth)
    assert listed.status_code == 200, listed.text
    rows = listed.json()["data"]
    assert [r["attempt"] for r in rows] == [4, 2, 1]  # newest first
    assert rows[1] == {
        "id": f"wa_{one}_2", "endpointId": one, "webhookId": webhook_id("evt_1", one),
        "eventId": "evt_1", "eventType": "sms_delivered", "messageId": "msg_1", "attempt": 2,
        "trigger": "event", "at": "2026-11-21T12:00:02.000Z", "statusCode": 200, "latencyMs": 12,
        "error": None, "outcome": "delivered"}
    retrying = await client.get(f"{PATH}/{one}/attempts?outcome=retrying", headers=auth)
    assert [r["attempt"] for r in retrying.json()["data"]] == [1]
    assert (await client.get(f"{PATH}/{one}/attempts?outcome=lost", headers=auth)).status_code == 422

    per_message = await client.get("/v1/webhook-attempts?messageId=msg_1", headers=auth)
    assert per_message.status_code == 200
    assert {(r["endpointId"], r["attempt"]) for r in per_message.json()["data"]} == {
        (one, 1), (one, 2), (two, 3)}
    assert per_message.json()["pagination"]["total"] == 3
    missing = await client.get("/v1/webhook-attempts", headers=auth)
    assert missing.status_code == 422 and missing.json()["field"] == "messageId"

    theirs = await hooks_key(db, other.id)
    assert (await client.get(f"{PATH}/{one}/attempts", headers=theirs)).status_code == 404
    assert (await client.get("/v1/webhook-attempts?messageId=msg_1",
                             headers=theirs)).json()["data"][0]["endpointId"] == "we_theirs"


async def test_a_test_event_is_handed_to_webhook_fanout(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document], commands: Commands) -> None:
    auth = await hooks_key(db, tenant.id)
    endpoint = await new_endpoint(client, auth, events=["sms_failed", "sms_sent"])
    sent = await client.post(f"{PATH}/{endpoint}/test", headers=auth)
    assert sent.status_code == 202, sent.text
    data = sent.json()["data"]
    command = await commands.take()
    assert isinstance(command, SendTestEvent)
    assert (command.tenant_id, command.endpoint_id, command.event_type) == (
        tenant.id, endpoint, "sms_failed")  # the first type the endpoint subscribes to
    assert data["webhookId"] == webhook_id(command.event_id, endpoint)
    assert data["eventId"] == command.event_id and data["commandId"] == command.command_id

    chosen = await client.post(f"{PATH}/{endpoint}/test", headers=auth,
                               json={"eventType": "whatsapp_read"})
    assert chosen.status_code == 202
    assert (await commands.take()).event_type == "whatsapp_read"  # type: ignore[union-attr]
    bad = await client.post(f"{PATH}/{endpoint}/test", headers=auth, json={"eventType": "nope"})
    assert bad.status_code == 422 and bad.json()["field"] == "eventType"
    assert (await client.post(f"{PATH}/we_unknown/test", headers=auth)).status_code == 404
    await client.patch(f"{PATH}/{endpoint}", headers=auth, json={"enabled": False})
    disabled = await client.post(f"{PATH}/{endpoint}/test", headers=auth)
    assert disabled.status_code == 409 and disabled.json()["error"] == "endpoint_disabled"
    assert await commands.none()


async def test_replays_are_handed_to_webhook_fanout(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document], commands: Commands) -> None:
    auth = await hooks_key(db, tenant.id)
    endpoint = await new_endpoint(client, auth)
    await db["webhook_attempts"].insert_one(attempt(endpoint, tenant.id, 1, outcome="failed"))
    known = webhook_id("evt_1", endpoint)

    one = await client.post(f"{PATH}/{endpoint}/replay", headers=auth, json={"webhookId": known})
    assert one.status_code == 202, one.text
    command = await commands.take()
    assert isinstance(command, ReplayDelivery)
    assert (command.webhook_id, command.endpoint_id, command.tenant_id) == (known, endpoint,
                                                                           tenant.id)
    assert one.json()["data"] == {"commandId": command.command_id, "webhookId": known}

    since = await client.post(f"{PATH}/{endpoint}/replay", headers=auth,
                              json={"since": "2026-11-21T00:00:00Z"})
    assert since.status_code == 202, since.text
    failed = await commands.take()
    assert isinstance(failed, ReplayFailed) and failed.since == datetime(2026, 11, 21, tzinfo=UTC)

    for body in ({}, {"webhookId": known, "since": "2026-11-21T00:00:00Z"}):
        assert (await client.post(f"{PATH}/{endpoint}/replay", headers=auth,
                                  json=body)).status_code == 422
    unknown = await client.post(f"{PATH}/{endpoint}/replay", headers=auth,
                                json={"webhookId": "msg_never"})
    assert unknown.status_code == 404
    other = await make_tenant(db, "Other")
    theirs = await client.post(f"{PATH}/{endpoint}/replay", headers=await hooks_key(db, other.id),
                               json={"webhookId": known})
    assert theirs.status_code == 404
    assert await commands.none()
