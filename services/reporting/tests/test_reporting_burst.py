"""A burst of events lands correctly, in batches, and an undecodable event is dead-lettered."""

from __future__ import annotations

import asyncio
import random

import msgspec
from faststream.rabbit import RabbitQueue
from prometheus_client import REGISTRY
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts import topology
from postwire_contracts.messages import StatusChanged, StatusChanges
from postwire_contracts.status import Status
from postwire_platform.broker import EXCHANGE, dead_queue
from postwire_platform.mongo import EVENTS, MESSAGES, Document

from .reporting_support import bus, event, eventually, insert_message
from .reporting_support import running_reporting as running

MESSAGES_IN_BURST = 125


async def test_a_burst_of_500_events_lands_in_batches(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    batches_before = _sample("postwire_reporting_batch_size_count")
    sizes_before = _sample("postwire_reporting_batch_size_sum")
    ids = [await insert_message(db) for _ in range(MESSAGES_IN_BURST)]
    events = []
    for n, mid in enumerate(ids):
        pid = f"burst-{n}"
        sent = event(Status.SENT, message_id=mid, provider_id=pid, seconds=2)
        events += [event(Status.PROCESSING, message_id=mid, seconds=1), sent,
                   event(Status.DELIVERED, provider_id=pid, seconds=3) if n % 2 else
                   event(Status.DELIVERED, message_id=mid, provider_id=pid, seconds=3), sent]
    random.Random(7).shuffle(events)
    assert len(events) == 500

    async with running(amqp_url, mongodb_url, db_name), bus(amqp_url) as wire:
        for start in range(0, len(events), 100):
            await asyncio.gather(*(wire.publish(e) for e in events[start:start + 100]))

        async def all_delivered() -> bool:
            done = await db[MESSAGES].count_documents(
                {"_id": {"$in": ids}, "status": "DELIVERED", "timeline": {"$size": 4}})
            return done == MESSAGES_IN_BURST
        await eventually(all_delivered, timeout=40)

        async def all_announced() -> bool:
            return len(await wire.drain()) >= 3 * MESSAGES_IN_BURST
        await eventually(all_announced, timeout=20)
        await asyncio.sleep(0.3)
        notes = await wire.drain()

    assert len(notes) == 3 * MESSAGES_IN_BURST  # duplicates are not announced
    # announced per batch: one StatusChanges per batch and channel, not one message per change
    assert len(wire.received) < len(notes) / 5, len(wire.received)
    assert any(isinstance(n, StatusChanges) and len(n.changes) > 1 for n in wire.received)
    assert await db[EVENTS].count_documents({}) == 3 * MESSAGES_IN_BURST
    assert await db[EVENTS].count_documents({"message_id": {"$in": ids}}) == 3 * MESSAGES_IN_BURST
    docs = await db[MESSAGES].find({"_id": {"$in": ids}}).to_list()
    for doc in docs:
        assert sorted(e["status"] for e in doc["timeline"]) == [
            "DELIVERED", "PROCESSING", "QUEUED", "SENT"]
        assert doc["provider_message_id"].startswith("burst-")
    batches = _sample("postwire_reporting_batch_size_count") - batches_before
    written = _sample("postwire_reporting_batch_size_sum") - sizes_before
    assert written >= 500 and batches < written / 5, (batches, written)


async def test_with_notify_batches_off_every_change_is_its_own_notification(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    ids = [await insert_message(db) for _ in range(20)]
    events = [event(status, message_id=mid, provider_id=f"one-{mid}", seconds=n)
              for mid in ids for n, status in enumerate((Status.PROCESSING, Status.SENT), 1)]
    async with running(amqp_url, mongodb_url, db_name, notify_batches=False), \
            bus(amqp_url) as wire:
        await asyncio.gather(*(wire.publish(e) for e in events))

        async def all_announced() -> bool:
            return len(await wire.drain()) >= len(events)
        await eventually(all_announced, timeout=20)
    assert sorted(n.event_id for n in wire.seen) == sorted(e.event_id for e in events)
    assert all(isinstance(n, StatusChanged) for n in wire.received)


def _sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_an_undecodable_event_is_dead_lettered(
        amqp_url: str, mongodb_url: str, db_name: str) -> None:
    async with running(amqp_url, mongodb_url, db_name), bus(amqp_url) as wire:
        exchange = await wire.broker.declare_exchange(EXCHANGE)
        assert exchange is not None
        await wire.broker.publish(b'{"kind":"event.status.v1","nonsense":true}', exchange=EXCHANGE,
                                  routing_key=topology.status_key(event(Status.SENT).channel),
                                  persist=True)
        dead: RabbitQueue = dead_queue(topology.REPORTING_QUEUE)

        async def parked() -> bool:
            queue = await wire.broker.declare_queue(dead)
            got = await queue.get(no_ack=True, fail=False)
            return got is not None and msgspec.json.decode(got.body)["nonsense"] is True
        await eventually(parked, timeout=10)
