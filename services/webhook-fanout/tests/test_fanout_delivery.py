"""webhook-fanout against real RabbitMQ, SecantusDB and a local HTTP receiver."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts.status import Status
from postwire_platform.clock import utcnow
from postwire_platform.mongo import WEBHOOK_ATTEMPTS, WEBHOOK_ENDPOINTS, Document
from postwire_testing.receiver import ReceivedRequest, WebhookReceiver

from .fanout_support import attempts as find_attempts
from .fanout_support import count, note, publish
from .fanout_support import endpoint as create_webhook_endpoint
from .fanout_support import running_fanout as running


async def attempts(db: AsyncDatabase[Document], event_id: str, n: int) -> list[Document]:
    return await find_attempts(db, {"event_id": event_id}, n)


async def test_a_notification_is_posted_once_signed_and_only_to_its_tenant(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    async with WebhookReceiver() as ours, WebhookReceiver() as theirs:
        secret, endpoint = await create_webhook_endpoint(db, "ten_a", ours.url)
        await create_webhook_endpoint(db, "ten_b", theirs.url)
        async with running(amqp_url, mongodb_url, db_name) as publisher:
            internal = note("ten_a", Status.PROCESSING)  # no customer event type: not sent
            delivered = note("ten_a")
            await publish(publisher, internal)
            await publish(publisher, delivered)
            [request] = await ours.wait_for(count(1))
            [record] = await attempts(db, delivered.event_id, 1)
            await asyncio.sleep(0.3)
        assert len(ours.requests) == 1 and theirs.requests == []
    body = ours.verify(secret, request)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"].startswith("msg_")
    assert abs(int(request.headers["webhook-timestamp"]) - datetime.now().timestamp()) < 60
    assert body["type"] == "sms_delivered" and body["timestamp"] == "2026-11-21T12:00:02Z"
    assert body["data"] == {
        "messageId": delivered.message_id, "channel": "sms", "status": "DELIVERED",
        "eventStatus": "DELIVERED", "recipient": "+447700900123", "providerMessageId": "c-1",
        "errorCode": None, "errorReason": None, "detail": {"stat": "DELIVRD"},
        "metadata": {"order": "42"}, "live": True, "occurredAt": "2026-11-21T12:00:02Z"}
    assert record["endpoint_id"] == endpoint["_id"] and record["tenant_id"] == "ten_a"
    assert (record["attempt"], record["status_code"], record["outcome"]) == (1, 200, "delivered")
    assert record["webhook_id"] == request.headers["webhook-id"]
    assert {"message_id", "at", "latency_ms", "error", "expires_at"} <= record.keys()
    assert record["trigger"] == "event" and record["body"].encode() == request.body


async def test_a_failing_endpoint_is_retried_with_the_same_webhook_id(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    async with WebhookReceiver() as hooks:
        secret, _ = await create_webhook_endpoint(db, "ten_a", hooks.url)
        hooks.respond(500, times=2)
        async with running(amqp_url, mongodb_url, db_name) as publisher:
            n = note("ten_a")
            await publish(publisher, n)
            seen = await hooks.wait_for(count(3), timeout=15)
            records = await attempts(db, n.event_id, 3)
    assert len({r.headers["webhook-id"] for r in seen}) == 1
    assert len({r.body for r in seen}) == 1
    assert all(hooks.verify_all(secret, seen))
    assert [(r["attempt"], r["status_code"], r["outcome"]) for r in records] == [
        (1, 500, "retrying"), (2, 500, "retrying"), (3, 200, "delivered")]


async def test_an_endpoint_that_never_recovers_fails_after_the_schedule(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    async with WebhookReceiver(status=503) as hooks:
        await create_webhook_endpoint(db, "ten_a", hooks.url)
        async with running(amqp_url, mongodb_url, db_name) as publisher:
            n = note("ten_a")
            await publish(publisher, n)
            records = await attempts(db, n.event_id, 3)
            await asyncio.sleep(1.5)
        assert len(hooks.requests) == 3
    assert [r["outcome"] for r in records] == ["retrying", "retrying", "failed"]


async def test_retry_after_within_the_schedule_is_honoured(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    async with WebhookReceiver() as hooks:
        await create_webhook_endpoint(db, "ten_a", hooks.url)
        hooks.respond(429, headers={"retry-after": "1"})
        async with running(amqp_url, mongodb_url, db_name) as publisher:
            await publish(publisher, note("ten_a"))
            first, second = await hooks.wait_for(count(2), timeout=15)
    assert (second.received_at - first.received_at).total_seconds() >= 0.95


async def test_410_disables_the_endpoint(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    async with WebhookReceiver() as hooks:
        _, endpoint = await create_webhook_endpoint(db, "ten_a", hooks.url)
        hooks.respond(410)
        async with running(amqp_url, mongodb_url, db_name) as publisher:
            gone = note("ten_a")
            await publish(publisher, gone)
            [record] = await attempts(db, gone.event_id, 1)
            later = note("ten_a")
            await publish(publisher, later)
            await asyncio.sleep(1.5)
        assert len(hooks.requests) == 1
    stored = await db[WEBHOOK_ENDPOINTS].find_one({"_id": endpoint["_id"]})
    assert stored is not None and stored["enabled"] is False
    assert (record["status_code"], record["outcome"]) == (410, "failed")


async def test_the_event_filter_is_respected(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    async with WebhookReceiver() as failures_only, WebhookReceiver() as everything:
        await create_webhook_endpoint(db, "ten_a", failures_only.url, events=["sms_failed"])
        await create_webhook_endpoint(db, "ten_a", everything.url)
        async with running(amqp_url, mongodb_url, db_name) as publisher:
            await publish(publisher, note("ten_a"))
            await publish(publisher, note("ten_a", Status.FAILED))
            await everything.wait_for(count(2))
            [got] = await failures_only.wait_for(count(1))
            await asyncio.sleep(0.3)
        assert len(failures_only.requests) == 1
    assert _type(got) == "sms_failed"


async def test_a_test_endpoint_never_receives_live_events(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    async with WebhookReceiver() as sandbox:
        await create_webhook_endpoint(db, "ten_a", sandbox.url, mode="test")
        async with running(amqp_url, mongodb_url, db_name) as publisher:
            live = note("ten_a", live=True)
            test = note("ten_a", live=False)
            await publish(publisher, live)
            await publish(publisher, test)
            [got] = await sandbox.wait_for(count(1))
            await attempts(db, test.event_id, 1)
            await asyncio.sleep(0.5)
        assert len(sandbox.requests) == 1
    assert got.json()["data"]["live"] is False


def _type(request: ReceivedRequest) -> str:
    return str(request.json()["type"])


async def test_attempt_records_past_their_retention_are_deleted_and_the_rest_kept(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    now = utcnow()
    await db[WEBHOOK_ATTEMPTS].insert_many([
        {"_id": "att_old", "tenant_id": "ten_a", "expires_at": now - timedelta(seconds=1)},
        {"_id": "att_new", "tenant_id": "ten_a", "expires_at": now + timedelta(days=30)}])
    async with running(amqp_url, mongodb_url, db_name, webhook_attempt_sweep_seconds=0.2):
        deadline = asyncio.get_running_loop().time() + 10
        while await db[WEBHOOK_ATTEMPTS].find_one({"_id": "att_old"}) is not None:
            assert asyncio.get_running_loop().time() < deadline, "the expired record stayed"
            await asyncio.sleep(0.1)
    assert [d["_id"] async for d in db[WEBHOOK_ATTEMPTS].find({})] == ["att_new"]
