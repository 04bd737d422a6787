"""A ``StatusChanges`` batch (reporting's notifications of one recorded batch) is delivered change by
change, exactly as the same changes notified one by one would be."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import msgspec
from prometheus_client import REGISTRY
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts import topology
from postwire_contracts.messages import StatusChanges
from postwire_contracts.status import Channel, Status
from postwire_platform.mongo import Document
from postwire_testing.receiver import WebhookReceiver

from .fanout_support import attempts, count, endpoint, note, publish, running_fanout


def _set_aside(reason: str) -> float:
    return REGISTRY.get_sample_value("postwire_webhook_set_aside_total", {"reason": reason}) or 0.0


async def test_each_change_of_a_batch_is_delivered_once_and_in_order_per_message(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    messages = [f"msg{uuid.uuid4().hex[:20]}" for _ in range(5)]
    changes = [note("ten_b", status, message_id=message_id)
               for message_id in messages
               for status in (Status.PROCESSING, Status.SENT, Status.DELIVERED)]
    order_before = _set_aside("order")
    async with WebhookReceiver() as hooks:
        secret, _ = await endpoint(db, "ten_b", hooks.url)
        async with running_fanout(amqp_url, mongodb_url, db_name, webhook_order_wait=30.0,
                                  webhook_defer_seconds=60.0) as publisher:
            await publisher.publish(StatusChanges(changes=changes), topology.notify_key(Channel.SMS),
                                    message_id="batch-1")
            seen = await hooks.wait_for(count(10), timeout=30)
            records = await attempts(db, {"tenant_id": "ten_b"}, 10)
    bodies = [hooks.verify(secret, request) for request in seen]
    assert len(bodies) == 10  # PROCESSING has no customer event
    for message_id in messages:
        types = [b["type"] for b in bodies if b["data"]["messageId"] == message_id]
        assert types == ["sms_sent", "sms_delivered"], (message_id, types)
    assert len({r.headers["webhook-id"] for r in seen}) == 10
    wanted = {c.event_id for c in changes if c.event_type in ("sms_sent", "sms_delivered")}
    assert {r["event_id"] for r in records} == wanted
    assert _set_aside("order") == order_before  # the SENT was waited for in memory, not deferred


async def test_a_batch_with_a_malformed_change_is_dead_lettered_whole(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    good = note("ten_m")
    bad = (b'{"kind":"notify.status.batch.v1","changes":[' + msgspec.json.encode(good)
           + b',{"kind":"notify.status.v1","event_id":7}]}')
    async with WebhookReceiver() as hooks:
        await endpoint(db, "ten_m", hooks.url)
        async with running_fanout(amqp_url, mongodb_url, db_name):
            connection = await aio_pika.connect(amqp_url, timeout=10)
            try:
                channel = await connection.channel(publisher_confirms=True)
                await channel.default_exchange.publish(
                    aio_pika.Message(bad, message_id="poison-batch"),
                    routing_key=topology.FANOUT_QUEUE)
                parked = await channel.declare_queue(
                    topology.dead_letter_queue(topology.FANOUT_QUEUE), passive=True)
                got = None
                for _ in range(150):
                    if (got := await parked.get(no_ack=True, fail=False)) is not None:
                        break
                    await asyncio.sleep(0.1)
            finally:
                await connection.close()
    assert got is not None and got.message_id == "poison-batch"
    assert hooks.requests == []  # not even the well-formed change: the batch is one message


def _first_attempts(how: str) -> float:
    return REGISTRY.get_sample_value("postwire_webhook_first_attempts_total", {"path": how}) or 0.0


async def test_a_large_batch_is_fanned_out_a_prefetch_at_a_time_so_its_attempts_stay_inline(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    changes = [note("ten_l", Status.SENT) for _ in range(24)]
    async with WebhookReceiver() as hooks:
        await endpoint(db, "ten_l", hooks.url)
        # four at a time: as many as the endpoint's slots, so none finds them all taken
        async with running_fanout(amqp_url, mongodb_url, db_name, prefetch=4,
                                  webhook_endpoint_concurrency=4) as publisher:
            await publish(publisher, note("ten_l", Status.SENT))  # the endpoint is known quick
            await hooks.wait_for(count(1), timeout=30)
            await asyncio.sleep(0.2)
            inline_before, jobs_before = _first_attempts("inline"), _first_attempts("job")
            await publisher.publish(StatusChanges(changes=changes), topology.notify_key(Channel.SMS),
                                    message_id="batch-large")
            seen = await hooks.wait_for(count(25), timeout=30)
    assert sorted(r.json()["data"]["messageId"] for r in seen[1:]) == sorted(
        c.message_id for c in changes)
    assert (_first_attempts("inline") - inline_before, _first_attempts("job") - jobs_before) == (24, 0)
