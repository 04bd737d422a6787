"""Order: a message's events are attempted in status order, and the wait for a missing one is bounded."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from prometheus_client import REGISTRY
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts.status import Status
from postwire_platform.broker import Publisher
from postwire_platform.mongo import WEBHOOK_ATTEMPTS, Document
from postwire_testing.receiver import ReceivedRequest, WebhookReceiver
from postwire_webhook_fanout.attempts import AttemptLog

from .fanout_support import attempts, count, endpoint, note, publish, running_fanout


async def test_a_delivered_is_not_sent_before_its_sent_even_when_notified_first(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    async with WebhookReceiver() as hooks:
        await endpoint(db, "ten_a", hooks.url)
        async with running_fanout(amqp_url, mongodb_url, db_name,
                                  webhook_order_wait=30.0) as publisher:
            messages = [f"msg{uuid.uuid4().hex[:20]}" for _ in range(4)]
            for message_id in messages:  # reporting emitted them out of order
                await publish(publisher, note("ten_a", Status.DELIVERED, message_id=message_id))
            await asyncio.sleep(0.3)
            for message_id in messages:
                await publish(publisher, note("ten_a", Status.SENT, message_id=message_id))
            seen = await hooks.wait_for(count(8), timeout=30)
    for message_id in messages:
        types = [r.json()["type"] for r in seen if r.json()["data"]["messageId"] == message_id]
        assert types == ["sms_sent", "sms_delivered"], (message_id, types)


async def test_only_subscribed_earlier_events_are_waited_for(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    async with WebhookReceiver() as hooks:
        await endpoint(db, "ten_a", hooks.url, events=["sms_delivered"])
        # an order wait far beyond the receiver's timeout: a delivery here proves it did not wait
        async with running_fanout(amqp_url, mongodb_url, db_name,
                                  webhook_order_wait=600.0) as publisher:
            await publish(publisher, note("ten_a", Status.DELIVERED))
            [got] = await hooks.wait_for(count(1), timeout=20)
    assert got.json()["type"] == "sms_delivered"


async def test_the_wait_for_an_earlier_event_that_never_comes_is_bounded(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    async with WebhookReceiver() as hooks:
        _, hook = await endpoint(db, "ten_a", hooks.url)
        async with running_fanout(amqp_url, mongodb_url, db_name,
                                  webhook_order_wait=1.0) as publisher:
            lonely = note("ten_a", Status.DELIVERED)  # its SENT was never notified
            await publish(publisher, lonely)
            [got] = await hooks.wait_for(count(1), timeout=20)
            [record] = await attempts(db, {"event_id": lonely.event_id}, 1)
    assert got.json()["data"]["messageId"] == lonely.message_id
    assert (record["attempt"], record["outcome"], record["endpoint_id"]) == (1, "delivered",
                                                                             hook["_id"])


def _set_aside_for_order() -> float:
    return REGISTRY.get_sample_value("postwire_webhook_set_aside_total", {"reason": "order"}) or 0.0


NO_DEFER = {"webhook_order_wait": 60.0, "webhook_defer_seconds": 60.0,
            "webhook_order_inline_wait": 30.0}
"""Order waits in memory only: a defer round would outlast the tests' waits."""


async def _sent_then_delivered(publisher: Publisher, tenant_id: str, n: int) -> list[str]:
    """Notify SENT then DELIVERED for ``n`` new messages; their ids."""
    messages = [f"msg{uuid.uuid4().hex[:20]}" for _ in range(n)]
    for message_id in messages:
        await publish(publisher, note(tenant_id, Status.SENT, message_id=message_id))
        await publish(publisher, note(tenant_id, Status.DELIVERED, message_id=message_id))
    return messages


def _assert_sent_before_delivered(seen: list[ReceivedRequest], messages: list[str]) -> None:
    for message_id in messages:
        types = [r.json()["type"] for r in seen if r.json()["data"]["messageId"] == message_id]
        assert types == ["sms_sent", "sms_delivered"], (message_id, types)


async def test_a_receipt_right_behind_its_sent_waits_in_memory_not_in_the_defer_queue(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    async with WebhookReceiver() as hooks:
        await endpoint(db, "ten_a", hooks.url)
        hooks.hold()  # the SENT attempts are in flight when their DELIVERED jobs arrive
        before = _set_aside_for_order()
        # both arrive only if nothing was set aside
        async with running_fanout(amqp_url, mongodb_url, db_name, **NO_DEFER) as publisher:
            messages = await _sent_then_delivered(publisher, "ten_a", 5)
            await asyncio.sleep(0.5)
            hooks.release()
            seen = await hooks.wait_for(count(10), timeout=30)
    _assert_sent_before_delivered(seen, messages)
    assert _set_aside_for_order() == before


async def test_a_receipt_follows_its_sent_once_the_sent_was_attempted_before_its_record_is_written(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document],
        monkeypatch: pytest.MonkeyPatch) -> None:
    writes_open = asyncio.Event()
    insert = AttemptLog._insert

    async def held_insert(self: AttemptLog, docs: list[Document]) -> None:
        await writes_open.wait()
        await insert(self, docs)

    monkeypatch.setattr(AttemptLog, "_insert", held_insert)
    async with WebhookReceiver() as hooks:
        await endpoint(db, "ten_a", hooks.url)
        before = _set_aside_for_order()
        # no attempt record is written until the end
        async with running_fanout(amqp_url, mongodb_url, db_name, **NO_DEFER) as publisher:
            messages = await _sent_then_delivered(publisher, "ten_a", 3)
            seen = await hooks.wait_for(count(6), timeout=20)
            assert await db[WEBHOOK_ATTEMPTS].count_documents({"tenant_id": "ten_a"}) == 0
            writes_open.set()
            records = await attempts(db, {"tenant_id": "ten_a"}, 6)
    _assert_sent_before_delivered(seen, messages)
    assert sorted((r["message_id"], r["event_type"], r["outcome"]) for r in records) == sorted(
        (m, t, "delivered") for m in messages for t in ("sms_sent", "sms_delivered"))
    assert _set_aside_for_order() == before
