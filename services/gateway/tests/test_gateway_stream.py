"""The live stream over a real socket: tenant isolation, scopes, frames, pings and slow clients.

The gateway runs under uvicorn in a thread (flow control only exists on a real socket); notifications
are published straight to the exchange as reporting publishes them.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from faststream.rabbit import RabbitBroker
from prometheus_client import REGISTRY
from pymongo.asynchronous.database import AsyncDatabase
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from postwire_contracts import topology
from postwire_contracts.messages import StatusChanged, StatusChanges
from postwire_contracts.status import Channel, Status
from postwire_gateway.app import create_app
from postwire_gateway.settings import GatewaySettings
from postwire_gateway.stream import StreamHub
from postwire_platform import tenancy
from postwire_platform.broker import Publisher, make_broker
from postwire_platform.mongo import TENANTS, Document
from postwire_testing.servers import ThreadedServer

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@dataclass
class Stream:
    """A served gateway and a publisher of notifications."""

    url: str
    publisher: Publisher

    async def notify(self, tenant_id: str, *, channel: Channel = Channel.SMS,
                     status: Status = Status.DELIVERED, pad: int = 0) -> StatusChanged:
        note = self.change(tenant_id, channel=channel, status=status, pad=pad)
        await self.publisher.publish(note, topology.notify_key(channel), message_id=note.event_id)
        return note

    @staticmethod
    def change(tenant_id: str, *, channel: Channel = Channel.SMS,
               status: Status = Status.DELIVERED, pad: int = 0) -> StatusChanged:
        return StatusChanged(
            event_id=f"evt_{uuid.uuid4().hex}", event_type=f"{channel.value}_{status.value.lower()}",
            tenant_id=tenant_id, message_id=f"msg_{uuid.uuid4().hex}", channel=channel, status=status,
            event_status=status, occurred_at=T0, recipient="+447911123456", live=False,
            provider_message_id="c-1",
            metadata={"order": "42", **({"pad": secrets.token_urlsafe(pad)} if pad else {})})


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[RabbitBroker]:
    test_broker = make_broker(amqp_url)
    await test_broker.connect()
    yield test_broker
    await test_broker.stop()


async def serve(settings: GatewaySettings, broker: RabbitBroker, **overrides: Any) -> AsyncIterator[Stream]:
    app = create_app(msgspec.structs.replace(settings, **overrides))
    async with ThreadedServer(app) as server:
        yield Stream(server.url.replace("http://", "ws://") + "/v1/stream", Publisher(broker))


@pytest.fixture
async def stream(settings: GatewaySettings, broker: RabbitBroker) -> AsyncIterator[Stream]:
    async for served in serve(settings, broker, stream_buffer=8):
        yield served


async def key_for(db: AsyncDatabase[Document], name: str, scopes: list[str]) -> tuple[str, str]:
    tenant = await tenancy.create_tenant(db, name)
    key, _ = await tenancy.create_key(db, tenant["_id"], scopes, mode="live")
    return tenant["_id"], key


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def next_frame(ws: ClientConnection, timeout: float = 15.0) -> dict[str, Any]:
    """The next frame other than a keepalive ping."""
    async with asyncio.timeout(timeout):
        while True:
            frame: dict[str, Any] = json.loads(await ws.recv())
            if frame["type"] != "ping":
                return frame


async def frames_until(ws: ClientConnection, message_id: str) -> list[dict[str, Any]]:
    """Status frames up to and including the one of ``message_id``."""
    got = []
    while True:
        frame = await next_frame(ws)
        got.append(frame)
        if frame.get("messageId") == message_id:
            return got


async def test_each_tenant_sees_only_its_own_events_of_channels_it_may_read(
        stream: Stream, db: AsyncDatabase[Document]) -> None:
    first, first_key = await key_for(db, "Acme", ["read:sms", "read:whatsapp"])
    second, second_key = await key_for(db, "Other", ["read:sms"])
    async with (connect(stream.url, additional_headers=auth(first_key)) as one,
                connect(f"{stream.url}?token={second_key}") as two):  # the browsers' way
        assert await next_frame(one) == {"type": "ready", "channels": ["sms", "whatsapp"]}
        assert await next_frame(two) == {"type": "ready", "channels": ["sms"]}
        mine = await stream.notify(first)
        theirs = await stream.notify(second, status=Status.SENT)
        await stream.notify(first, channel=Channel.EMAIL)  # Acme's key may not read email
        whatsapp = await stream.notify(first, channel=Channel.WHATSAPP, status=Status.READ)
        await stream.notify(second, channel=Channel.WHATSAPP)  # nor Other's WhatsApp
        last = await stream.notify(second)
        first_frames = await frames_until(one, whatsapp.message_id)
        second_frames = await frames_until(two, last.message_id)
    assert [f["messageId"] for f in first_frames] == [mine.message_id, whatsapp.message_id]
    assert [f["messageId"] for f in second_frames] == [theirs.message_id, last.message_id]
    assert first_frames[0] == {
        "type": "sms_delivered", "eventId": mine.event_id, "messageId": mine.message_id,
        "channel": "sms", "status": "DELIVERED", "eventStatus": "DELIVERED",
        "occurredAt": "2026-11-21T12:00:00.000Z", "recipient": "+447911123456", "live": False,
        "providerMessageId": "c-1", "errorCode": None, "errorReason": None,
        "metadata": {"order": "42"}, "detail": {}}
    assert first_frames[1]["type"] == "whatsapp_read"
    assert second_frames[0]["type"] == "sms_sent"


async def test_a_batch_of_changes_reaches_the_stream_as_one_frame_each_in_order(
        stream: Stream, db: AsyncDatabase[Document]) -> None:
    tenant, key = await key_for(db, "Acme", ["read:sms"])
    other, _ = await key_for(db, "Other", ["read:sms"])
    before = _relayed()
    async with connect(stream.url, additional_headers=auth(key)) as ws:
        assert await next_frame(ws) == {"type": "ready", "channels": ["sms"]}
        changes = [stream.change(tenant, status=Status.SENT), stream.change(other),
                   stream.change(tenant)]
        await stream.publisher.publish(StatusChanges(changes=changes),
                                       topology.notify_key(Channel.SMS), message_id="batch-1")
        frames = await frames_until(ws, changes[2].message_id)
    assert [(f["eventId"], f["type"]) for f in frames] == [
        (changes[0].event_id, "sms_sent"), (changes[2].event_id, "sms_delivered")]
    assert _relayed() - before == 3


def _relayed() -> float:
    return REGISTRY.get_sample_value("postwire_gateway_stream_notifications_total") or 0.0


async def test_a_replica_receives_notifications_only_while_someone_streams_from_it(
        stream: Stream, db: AsyncDatabase[Document]) -> None:
    tenant, key = await key_for(db, "Acme", ["read:sms"])
    before = _relayed()
    await stream.notify(tenant)  # nobody is connected: this one never reaches the replica
    for _ in range(2):  # bound for the first client, unbound after it, bound again for the next
        async with connect(stream.url, additional_headers=auth(key)) as ws:
            assert await next_frame(ws) == {"type": "ready", "channels": ["sms"]}
            note = await stream.notify(tenant)
            frames = await frames_until(ws, note.message_id)
            assert [f["messageId"] for f in frames] == [note.message_id]
    assert _relayed() - before == 2


async def test_keys_without_a_read_scope_are_refused_before_the_upgrade(
        stream: Stream, db: AsyncDatabase[Document]) -> None:
    _, stats_only = await key_for(db, "Acme", ["stats:read", "send:sms"])
    suspended, suspended_key = await key_for(db, "Gone", ["read:sms"])
    await db[TENANTS].update_one({"_id": suspended}, {"$set": {"status": "suspended"}})
    cases: list[tuple[dict[str, str], str, int, str]] = [
        (auth(stats_only), "", 403, "forbidden"),
        (auth("pw_live_nope"), "", 401, "unauthorized"),
        ({}, "", 401, "unauthorized"),
        ({}, "?token=pw_test_nope", 401, "unauthorized"),
        (auth(suspended_key), "", 402, "tenant_suspended"),
    ]
    for headers, query, status, error in cases:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(stream.url + query, additional_headers=headers):
                pass
        response = refused.value.response
        assert response.status_code == status, (query, headers)
        assert json.loads(response.body or b"{}") | {"message": ""} == {
            "success": False, "error": error, "code": status, "message": ""}


async def test_an_idle_stream_gets_keepalive_pings(
        settings: GatewaySettings, broker: RabbitBroker, db: AsyncDatabase[Document]) -> None:
    _, key = await key_for(db, "Acme", ["read:email"])
    async for served in serve(settings, broker, stream_ping_seconds=0.2):
        async with connect(served.url, additional_headers=auth(key)) as ws:
            async with asyncio.timeout(15):
                assert json.loads(await ws.recv())["type"] == "ready"
                assert json.loads(await ws.recv()) == {"type": "ping"}


def slow_socket(url: str) -> socket.socket:
    """A client socket with a tiny receive buffer, so an unread stream backs up quickly."""
    port = int(url.split(":")[2].split("/")[0])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


def slow_clients_closed() -> float:
    return REGISTRY.get_sample_value("postwire_gateway_stream_slow_clients_total") or 0.0


async def test_a_slow_client_is_closed_without_holding_up_another(
        stream: Stream, db: AsyncDatabase[Document]) -> None:
    tenant, key = await key_for(db, "Acme", ["read:sms"])
    closed_before = slow_clients_closed()
    async with (connect(stream.url, additional_headers=auth(key)) as fast,
                connect(stream.url, additional_headers=auth(key), sock=slow_socket(stream.url),
                        max_queue=1) as slow):
        assert (await next_frame(fast))["type"] == "ready"
        published: list[str] = []
        received: list[str] = []

        async def read_fast() -> None:
            while True:
                frame = await next_frame(fast, timeout=60)
                received.append(frame["messageId"])

        reader = asyncio.create_task(read_fast())
        try:
            # 30 kB frames (random: compression cannot shrink them): a few fill the socket buffers,
            # then the slow client's 8-frame buffer overflows
            for _ in range(20):
                for _ in range(10):
                    published.append((await stream.notify(tenant, pad=30_000)).message_id)
                if slow_clients_closed() > closed_before:
                    break
            async with asyncio.timeout(30):  # the last frames may still be on their way to the hub
                while slow_clients_closed() == closed_before:
                    await asyncio.sleep(0.05)
            assert slow_clients_closed() == closed_before + 1

            async def fast_has_all() -> bool:
                return len(received) >= len(published)
            async with asyncio.timeout(60):
                while not await fast_has_all():
                    await asyncio.sleep(0.05)
        finally:
            reader.cancel()
        # the fast client got every frame, in order, while the slow one was being dropped
        assert received == published
        # the slow client, reading at last, finds what was already on its way, then the close
        slow_frames = 0
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(60):
                while True:
                    await slow.recv()
                    slow_frames += 1
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        assert "too slow" in closed.value.rcvd.reason
        assert 0 < slow_frames < len(published) + 1


async def test_the_hub_never_waits_for_a_full_buffer() -> None:
    hub = StreamHub(buffer=2)
    stuck = hub.add("ten_a", frozenset({"sms"}))
    reading = hub.add("ten_a", frozenset({"sms"}))
    other = hub.add("ten_b", frozenset({"sms"}))
    got: list[str] = []
    for n in range(5):
        note = StatusChanged(event_id=f"e{n}", event_type="sms_sent", tenant_id="ten_a",
                             message_id=f"m{n}", channel=Channel.SMS, status=Status.SENT,
                             event_status=Status.SENT, occurred_at=T0, recipient="+1")
        assert hub.dispatch(note) == 2
        got.append(json.loads(reading.frames.get_nowait())["messageId"])
    assert got == [f"m{n}" for n in range(5)]
    assert stuck.too_slow.is_set() and stuck.frames.qsize() == 2
    assert other.frames.empty() and not other.too_slow.is_set()
    hub.remove(stuck)
    assert len(hub) == 2
