"""The signed provider status endpoint and inbound STOP/START (HTTP and SMPP) against the real broker
and SecantusDB: credentials, keyword matching, the tenants that wrote to the handset, webhook events."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from faststream.rabbit import RabbitQueue
from litestar.testing import AsyncTestClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts import topology
from postwire_contracts.messages import InboundEvent, OptOutChanged
from postwire_contracts.status import Channel, Status
from postwire_platform.broker import EXCHANGE, make_broker
from postwire_platform.clock import utcnow
from postwire_platform.mongo import MESSAGES, OPT_OUTS, Document
from postwire_provider_ingest.app import create_app
from postwire_provider_ingest.settings import ProviderIngestSettings
from postwire_provider_ingest.signature import sign
from postwire_testing.taps import EventTap, event_tap

PROVIDER = "/v1/webhooks/sms/provider"
INBOUND = "/v1/webhooks/sms/inbound-opt-out"
SECRET = "whsk_provider_secret"
HANDSET = "+447700900123"


class Notes:
    def __init__(self) -> None:
        self.items: list[OptOutChanged] = []

    async def wait_count(self, n: int, timeout: float = 15.0) -> list[OptOutChanged]:
        deadline = time.monotonic() + timeout
        while len(self.items) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"expected {n} opt-out notes, saw {self.items}")
            await asyncio.sleep(0.02)
        return list(self.items)


@pytest.fixture
async def tap(amqp_url: str) -> AsyncIterator[EventTap]:
    async with event_tap(amqp_url) as t:
        yield t


@pytest.fixture
async def notes(amqp_url: str) -> AsyncIterator[Notes]:
    found = Notes()
    broker = make_broker(amqp_url)
    queue = RabbitQueue(f"test.optout.{uuid.uuid4().hex[:8]}", routing_key="notify.optout.#",
                        auto_delete=True)

    @broker.subscriber(queue, EXCHANGE)
    async def collect(note: OptOutChanged) -> None:
        found.items.append(note)

    await broker.start()
    yield found
    await broker.stop()


@pytest.fixture
async def client(amqp_url: str, mongodb_url: str,
                 db_name: str) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = ProviderIngestSettings(
        amqp_url=amqp_url, mongodb_url=mongodb_url, mongodb_database=db_name,
        sms_inbound_token="in-tok", sms_provider_secrets=["old-secret", SECRET],
        shutdown_timeout=5.0)
    async with AsyncTestClient(create_app(settings)) as c:
        yield c


def signed(body: bytes, *, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if at is None else at
    return {"X-Postwire-Timestamp": str(ts), "X-Postwire-Signature": sign(secret, ts, body),
            "Content-Type": "application/json"}


async def test_signed_provider_status(client: AsyncTestClient[Any], tap: EventTap) -> None:
    body = b'{"id":"prov-1","reference":"m-1","stat":"DELIVRD","err":"000"}'
    bad = [
        ({"Content-Type": "application/json"}, 401),
        ({"X-Postwire-Timestamp": str(int(time.time()))}, 401),
        (signed(body, secret="wrong"), 403),
        (signed(body, at=int(time.time()) - 3600), 403),
        (signed(body + b" "), 403),
        ({**signed(body), "X-Postwire-Timestamp": "soon"}, 403),
    ]
    for headers, status in bad:
        r = await client.post(PROVIDER, content=body, headers=headers)
        assert r.status_code == status, (headers, r.text)
        assert r.json()["success"] is False
    ok = await client.post(PROVIDER, content=body, headers=signed(body))
    assert (ok.status_code, ok.json()) == (200, {"success": True})
    rotated = b'{"id":"prov-2","stat":"UNDELIV"}'
    headers = signed(rotated)
    headers["X-Postwire-Signature"] = sign("old-secret", int(headers["X-Postwire-Timestamp"]),
                                           rotated) + " v1=deadbeef"
    assert (await client.post(PROVIDER, content=rotated, headers=headers)).status_code == 200
    events = await tap.wait_count(2)
    await asyncio.sleep(0.3)
    assert len(tap.events) == 2
    delivered, failed = events
    assert (delivered.status, delivered.message_id, delivered.source) == (
        Status.DELIVERED, "m-1", "provider-status")
    assert (failed.status, failed.error_code) == (Status.FAILED, "UNDELIV")


async def seed(db: AsyncDatabase[Document], tenant: str, to: str, sender: str,
               minutes_ago: int = 0) -> None:
    await db[MESSAGES].insert_one({
        "_id": uuid.uuid4().hex, "tenant_id": tenant, "channel": "sms", "to": to,
        "sender_id": sender, "accepted_at": utcnow() - timedelta(minutes=minutes_ago),
        "status": "DELIVERED"})


async def test_inbound_stop_and_start_over_http(
        client: AsyncTestClient[Any], notes: Notes, db: AsyncDatabase[Document]) -> None:
    await seed(db, "ten_a", HANDSET, "Postwire", minutes_ago=5)
    await seed(db, "ten_b", HANDSET, "OtherBrand", minutes_ago=1)
    await seed(db, "ten_c", "+447700900555", "Postwire")

    for params in ({"token": "nope"}, {}):
        r = await client.post(INBOUND, params=params, json={"from": HANDSET, "text": "STOP"})
        assert r.status_code == 401
    for text in ("STOP PLEASE", "hello", "stop stop"):
        r = await client.post(INBOUND, params={"token": "in-tok"},
                              json={"from": HANDSET, "to": "Postwire", "text": text})
        assert r.status_code == 200
    r = await client.post(INBOUND, params={"token": "in-tok"},
                          json={"from": "+447700900999", "to": "Postwire", "text": "STOP"})
    assert r.status_code == 200   # nobody wrote to that handset: nothing recorded
    r = await client.post(INBOUND, params={"token": "in-tok"},
                          json={"From": HANDSET, "To": "Postwire", "Body": " Stop! ",
                                "MessageSid": "SM1"})
    assert r.status_code == 200
    [note] = await notes.wait_count(1)
    assert (note.event_type, note.tenant_id, note.address, note.keyword, note.source) == (
        "sms_opt_out", "ten_a", HANDSET, "STOP", "inbound")
    assert note.event_id == "optout:mo:http:SM1:ten_a"
    stored = await db[OPT_OUTS].find({}).to_list()
    assert [(d["tenant_id"], d["address"], d["source"]) for d in stored] == [
        ("ten_a", HANDSET, "inbound")]

    # addressed to a sender nobody of them used: the tenant that wrote last
    r = await client.post(INBOUND, params={"token": "in-tok"},
                          json={"from": HANDSET, "to": "12345", "text": "UNSUBSCRIBE"})
    second = (await notes.wait_count(2))[1]
    assert (second.tenant_id, second.event_type) == ("ten_b", "sms_opt_out")

    r = await client.post(INBOUND, params={"token": "in-tok"},
                          json={"from": HANDSET, "to": "Postwire", "text": "start"})
    third = (await notes.wait_count(3))[2]
    assert (third.tenant_id, third.event_type, third.opted_out) == ("ten_a", "sms_opt_in", False)
    remaining = await db[OPT_OUTS].find({}).to_list()
    assert [d["tenant_id"] for d in remaining] == ["ten_b"]
    bad = await client.post(INBOUND, params={"token": "in-tok"}, json={"text": "STOP"})
    assert (bad.status_code, bad.json()["field"]) == (422, "from")


async def test_inbound_stop_from_an_smpp_bind(
        client: AsyncTestClient[Any], notes: Notes, tap: EventTap,
        db: AsyncDatabase[Document]) -> None:
    await seed(db, "ten_a", HANDSET, "Postwire")
    mo = InboundEvent(event_id="mo:carrier-a:01", channel=Channel.SMS, sender=HANDSET,
                      recipient="Postwire", body="STOP", received_at=utcnow(), source="smpp")
    await tap.publisher.publish(mo, topology.inbound_key(Channel.SMS))
    [note] = await notes.wait_count(1)
    assert (note.tenant_id, note.source, note.event_id) == (
        "ten_a", "smpp", "optout:mo:carrier-a:01:ten_a")
    assert await db[OPT_OUTS].count_documents({"tenant_id": "ten_a", "address": HANDSET}) == 1
