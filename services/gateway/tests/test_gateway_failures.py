"""Dependencies down: 503 in the SPEC's format, nothing half-written, recovery without a restart."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts import topology
from postwire_contracts.messages import SendSms
from postwire_gateway.outbox import OutboxRelay
from postwire_platform import tenancy
from postwire_platform.broker import BrokerUnavailable
from postwire_platform.mongo import Document, make_client
from postwire_platform.service import Runtime
from postwire_testing.servers import free_port

from .gateway_support import SENDER, VALID_TO, SendQueue, Tenant, in_app

Client = AsyncTestClient[Any]
SMS = {"to": VALID_TO, "body": "hello", "senderId": SENDER}


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert (body["success"], body["error"], body["code"]) == (False, "service_unavailable", 503)
    assert int(response.headers["retry-after"]) > 0


class RefusingPublisher:
    """Stands in for ``runtime.publisher`` while RabbitMQ refuses confirms."""

    def __init__(self, before_raising: Any = None) -> None:
        self.calls = 0
        self._before = before_raising

    async def publish(self, *_: Any, **__: Any) -> None:
        self.calls += 1
        if self._before is not None:
            self._before()
        raise BrokerUnavailable("publish to 'send.sms' failed: test")


async def _dead_client() -> AsyncMongoClient[Document]:
    return make_client(f"mongodb://127.0.0.1:{free_port()}/?retryWrites=false", timeout_ms=300)


async def _close(mongo: AsyncMongoClient[Document]) -> None:
    await mongo.close()


@asynccontextmanager
async def mongo_down(client: Client) -> AsyncIterator[AsyncMongoClient[Document]]:
    """Point the gateway at a MongoDB port nobody listens on (made on the app's loop), then back."""
    runtime: Runtime = client.app.state.runtime
    good = runtime.mongo
    dead = await in_app(client, _dead_client)
    try:
        yield dead
    finally:
        runtime.mongo = good
        await in_app(client, _close, dead)


async def test_a_refused_publish_deletes_the_document_and_answers_503(
        app: Litestar, client: Client, tenant: Tenant, db: AsyncDatabase[Document],
        send_queue: SendQueue) -> None:
    runtime: Runtime = app.state.runtime
    real, refusing = runtime.publisher, RefusingPublisher()
    runtime.publisher = refusing  # type: ignore[assignment]
    try:
        response = await client.post("/v1/sms/send", headers=tenant.auth(), json=SMS)
    finally:
        runtime.publisher = real
    assert_unavailable(response)
    assert refusing.calls == 1
    assert await db["messages"].count_documents({}) == 0
    assert await send_queue.empty()


async def test_when_even_the_delete_fails_the_outbox_publishes_later(
        app: Litestar, client: Client, tenant: Tenant, db: AsyncDatabase[Document],
        send_queue: SendQueue) -> None:
    runtime: Runtime = app.state.runtime
    real = runtime.publisher
    async with mongo_down(client) as dead:  # MongoDB goes away between the insert and the delete
        runtime.publisher = RefusingPublisher(  # type: ignore[assignment]
            before_raising=lambda: setattr(runtime, "mongo", dead))
        try:
            response = await client.post("/v1/sms/send", headers=tenant.auth(), json=SMS)
        finally:
            runtime.publisher = real
    assert_unavailable(response)
    [doc] = await db["messages"].find().to_list()
    assert doc["published"] is False

    relay = OutboxRelay(runtime, clock=lambda: doc["accepted_at"] + timedelta(minutes=1),
                        grace=10, interval=60)
    assert await in_app(client, relay.run_once) == 1
    [(command, _)] = await send_queue.take(1)
    assert command.message_id == doc["_id"]
    assert (await db["messages"].find_one({"_id": doc["_id"]}) or {})["published"] is True


async def test_mongodb_down_is_503_for_auth_sends_and_reads(
        app: Litestar, client: Client, tenant: Tenant, db: AsyncDatabase[Document],
        send_queue: SendQueue) -> None:
    warm = await client.post("/v1/sms/send", headers=tenant.auth(), json=SMS)  # caches key, sender
    assert warm.status_code == 201
    await send_queue.take(1)
    fresh_key, _ = await tenancy.create_key(db, tenant.id, ["send:sms"])
    async with mongo_down(client) as dead:
        app.state.runtime.mongo = dead
        assert_unavailable(await client.post("/v1/sms/send", json=SMS,
                                             headers=tenant.auth(fresh_key)))
        assert_unavailable(await client.post("/v1/sms/send", headers=tenant.auth(), json=SMS))
        assert_unavailable(await client.get("/v1/sms", headers=tenant.auth()))
        assert_unavailable(await client.get(f"/v1/sms/{warm.json()['data']['id']}",
                                            headers=tenant.auth()))
    assert await send_queue.empty()
    assert await db["messages"].count_documents({}) == 1


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


async def test_rabbitmq_outage_is_503_without_writing_and_sends_resume_after_reconnect(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document], amqp_url: str) -> None:
    vhost = urlsplit(amqp_url).path.lstrip("/")
    if shutil.which("rabbitmqctl") is None or not vhost:
        pytest.skip("needs rabbitmqctl and a vhost of the test's own")
    user = urlsplit(amqp_url).username or "guest"
    _rabbitmqctl("clear_permissions", "-p", vhost, user)  # reconnects are refused until restored
    try:
        _rabbitmqctl("close_all_connections", "-p", vhost, "test outage")
        await asyncio.sleep(0.3)
        response = await client.post("/v1/sms/send", headers=tenant.auth(), json=SMS)
        assert_unavailable(response)
        assert "RabbitMQ" in response.json()["message"]
        assert (await client.get("/readyz")).status_code == 503
        assert await db["messages"].count_documents({}) == 0
    finally:
        _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while True:
        response = await client.post("/v1/sms/send", headers=tenant.auth(), json=SMS)
        if response.status_code == 201 or loop.time() > deadline:
            break
        assert_unavailable(response)
        await asyncio.sleep(0.25)
    assert response.status_code == 201, response.text
    assert await db["messages"].count_documents({}) == 1

    connection = await aio_pika.connect(amqp_url)
    try:
        queue = await (await connection.channel()).get_queue(topology.SMS_SEND_QUEUE, ensure=True)
        ids = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            ids.append(msgspec.json.decode(message.body, type=SendSms).message_id)
    finally:
        await connection.close()
    assert response.json()["data"]["id"] in ids
