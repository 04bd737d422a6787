"""Stats rollups against real RabbitMQ and SecantusDB: each status and event counted exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts.messages import StatusEvent
from postwire_contracts.stats import bucket_key, bucket_of, histogram, percentile, rollup_id
from postwire_contracts.status import Channel, Status
from postwire_platform.mongo import EVENTS, MESSAGES, STATS_DAILY, Document
from postwire_reporting.rollups import counted_here

from .reporting_support import T0, Bus, bus, event, eventually, has_timeline, insert_message, message
from .reporting_support import running_reporting as running

TENANT = "ten_test"


@pytest.fixture
async def wire(amqp_url: str, mongodb_url: str, db_name: str) -> AsyncIterator[Bus]:
    async with running(amqp_url, mongodb_url, db_name), bus(amqp_url) as b:
        yield b


async def rollup(db: AsyncDatabase[Document], tenant: str = TENANT, live: bool = False,
                 day: Any = None) -> Document:
    doc = await db[STATS_DAILY].find_one({"_id": rollup_id(tenant, "sms", day or T0.date(), live)})
    return doc or {}


async def in_ledger(db: AsyncDatabase[Document], count: int) -> None:
    async def check() -> bool:
        return await db[EVENTS].count_documents({}) >= count
    await eventually(check, timeout=60)


async def test_a_delivered_message_counts_each_status_once_with_its_latencies(
        wire: Bus, db: AsyncDatabase[Document]) -> None:
    mid = await insert_message(db)
    await wire.publish(event(Status.PROCESSING, message_id=mid, seconds=0.5))
    await eventually(has_timeline(db, mid, 2))
    await wire.publish(event(Status.SENT, message_id=mid, provider_id="s-1", seconds=2))
    await eventually(has_timeline(db, mid, 3))
    await wire.publish(event(Status.DELIVERED, message_id=mid, provider_id="s-1", seconds=30))
    await in_ledger(db, 3)

    doc = await rollup(db)
    assert (doc["tenant_id"], doc["channel"], doc["day"], doc["live"]) == (
        TENANT, "sms", T0.date().isoformat(), False)
    assert doc["counts"] == {"accepted": 1, "processing": 1, "sent": 1, "delivered": 1}
    assert doc["events"] == {"sms_sent": 1, "sms_delivered": 1}
    assert doc["latency"]["sent"] == {bucket_key(bucket_of(2000)): 1}
    assert doc["latency"]["delivered"] == {bucket_key(bucket_of(30000)): 1}
    # the percentiles a reader computes land within the bucket's ±12 %
    p50 = percentile(histogram(doc["latency"]["delivered"]), 0.5)
    assert p50 is not None and 30000 / 1.26 <= p50 <= 30000 * 1.26


async def test_duplicates_late_and_overtaking_events_are_not_counted_twice(
        wire: Bus, db: AsyncDatabase[Document]) -> None:
    mid = await insert_message(db)
    # the receipt overtakes SENT: delivered, and (implied) processing and sent, once each
    dlr = event(Status.DELIVERED, message_id=mid, provider_id="s-2", seconds=5, event_id=f"{mid}:dlr")
    await wire.publish(dlr)
    await eventually(has_timeline(db, mid, 2))
    await wire.publish(dlr)  # a redelivery after it was recorded
    await asyncio.gather(wire.publish(dlr), wire.publish(dlr))  # and twice within one batch
    late_sent = event(Status.SENT, message_id=mid, provider_id="s-2", seconds=2)
    await wire.publish(late_sent)
    await wire.publish(late_sent)
    late_failure = event(Status.FAILED, message_id=mid, seconds=9, error_code="UNDELIV")
    await wire.publish(late_failure)
    await in_ledger(db, 3)
    await eventually(has_timeline(db, mid, 4))
    await asyncio.sleep(0.3)  # let any stray duplicate be handled before counting

    doc = await rollup(db)
    assert doc["counts"] == {"accepted": 1, "processing": 1, "sent": 1, "delivered": 1}
    # one sms_delivered and one (late) sms_sent; the contradicting failure is no customer event
    assert doc["events"] == {"sms_delivered": 1, "sms_sent": 1}
    assert sum(doc["latency"]["delivered"].values()) == 1
    # accept→sent is measured once, by the batch that recorded the first SENT event, however late
    assert doc["latency"]["sent"] == {bucket_key(bucket_of(2000)): 1}
    assert (await message(db, mid))["status"] == "DELIVERED"


async def test_a_failure_counts_accepted_and_failed_only(wire: Bus, db: AsyncDatabase[Document]) -> None:
    mid = await insert_message(db)
    await wire.publish(event(Status.FAILED, message_id=mid, error_code="invalid_destination"))
    await in_ledger(db, 1)
    doc = await rollup(db)
    assert doc["counts"] == {"accepted": 1, "failed": 1}
    assert doc["events"] == {"sms_failed": 1}
    assert "latency" not in doc


async def test_a_batch_redone_after_its_writes_landed_does_not_count_again(
        wire: Bus, db: AsyncDatabase[Document]) -> None:
    # As if an earlier attempt applied the SENT (timeline, status, transition) and then died: the
    # redelivered event finds its writes done, so this batch owns nothing to count.
    mid = await insert_message(db)
    sent = event(Status.SENT, message_id=mid, provider_id="s-3", event_id=f"{mid}:sent", seconds=2)
    await db[MESSAGES].update_one({"_id": mid}, {
        "$set": {"status": "SENT", "sent_at": sent.occurred_at},
        "$push": {"timeline": {"event_id": sent.event_id, "status": "SENT",
                               "occurred_at": sent.occurred_at, "batch": "earlier"},
                  "transitions": {"status": "SENT", "batch": "earlier"}}})
    await wire.publish(sent)
    await in_ledger(db, 1)
    assert await rollup(db) == {}
    # the next transition counts itself only: the earlier attempt already owned accepted and sent
    await wire.publish(event(Status.DELIVERED, message_id=mid, seconds=4))
    await in_ledger(db, 2)
    assert (await rollup(db))["counts"] == {"delivered": 1}


async def test_rollups_are_kept_per_tenant_day_and_mode(wire: Bus, db: AsyncDatabase[Document]) -> None:
    first = await insert_message(db, tenant_id="ten_a")
    second = await insert_message(db, tenant_id="ten_b")
    live_next_day = await insert_message(db, tenant_id="ten_a")
    next_day = T0 + timedelta(days=1)
    await db[MESSAGES].update_one({"_id": live_next_day},
                                  {"$set": {"live": True, "accepted_at": next_day}})
    for mid in (first, second, live_next_day):
        await wire.publish(event(Status.SENT, message_id=mid, provider_id=f"p-{mid}"))
    await in_ledger(db, 3)
    assert (await rollup(db, "ten_a"))["counts"] == {"accepted": 1, "processing": 1, "sent": 1}
    assert (await rollup(db, "ten_b"))["counts"] == {"accepted": 1, "processing": 1, "sent": 1}
    assert (await rollup(db, "ten_a", live=True, day=next_day.date()))["counts"] == {
        "accepted": 1, "processing": 1, "sent": 1}
    assert await db[STATS_DAILY].count_documents({}) == 3


async def test_two_replicas_and_duplicated_deliveries_count_every_message_exactly_once(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    count = 30
    mids = [await insert_message(db) for _ in range(count)]
    async with (running(amqp_url, mongodb_url, db_name, batch_max=8, batch_wait_ms=5),
                running(amqp_url, mongodb_url, db_name, batch_max=8, batch_wait_ms=5),
                bus(amqp_url) as wire):
        events = [e for i, mid in enumerate(mids) for e in (
            event(Status.PROCESSING, message_id=mid, seconds=1, event_id=f"{mid}:p"),
            event(Status.SENT, message_id=mid, provider_id=f"c-{i}", seconds=2, event_id=f"{mid}:s"),
            event(Status.DELIVERED, message_id=mid, provider_id=f"c-{i}", seconds=3,
                  event_id=f"{mid}:d"))]
        # every event twice, concurrently, so both replicas see copies of the same events
        await asyncio.gather(*(wire.publish(e) for e in events + events))
        await in_ledger(db, len(events))

        async def all_delivered() -> bool:
            return await db[MESSAGES].count_documents({"status": "DELIVERED"}) == count
        await eventually(all_delivered, timeout=60)
        await asyncio.sleep(0.5)  # let the remaining duplicates be handled before counting
    doc = await rollup(db)
    assert doc["counts"] == {"accepted": count, "processing": count, "sent": count, "delivered": count}
    assert doc["events"] == {"sms_sent": count, "sms_delivered": count}
    assert sum(doc["latency"]["sent"].values()) == count
    assert sum(doc["latency"]["delivered"].values()) == count


def test_counted_here_takes_the_statuses_first_implied_by_this_batch() -> None:
    transitions = [{"status": "PROCESSING", "batch": "a"}, {"status": "DELIVERED", "batch": "b"},
                   {"status": "READ", "batch": "c"}]
    assert counted_here(transitions, "a") == {Status.QUEUED, Status.PROCESSING}
    assert counted_here(transitions, "b") == {Status.SENT, Status.DELIVERED}
    assert counted_here(transitions, "c") == {Status.READ}
    assert counted_here(transitions, "other") == set()
    assert counted_here([{"status": "FAILED", "batch": "x"}], "x") == {Status.QUEUED, Status.FAILED}
    assert counted_here([{"status": "bogus", "batch": "x"}, "junk"], "x") == set()


async def test_email_events_are_counted_under_their_customer_event_type(
        wire: Bus, db: AsyncDatabase[Document]) -> None:
    mid = await insert_message(db)
    await db[MESSAGES].update_one({"_id": mid}, {"$set": {"channel": "email", "to": ["a@example.com"]}})
    base = {"channel": Channel.EMAIL, "source": "test", "message_id": mid}
    await wire.publish(StatusEvent(event_id=f"{mid}:d", status=Status.DELIVERED,
                                   occurred_at=T0 + timedelta(seconds=3), **base))
    await in_ledger(db, 1)
    opened = StatusEvent(event_id=f"{mid}:o", status=Status.READ, event_type="email_opened",
                         occurred_at=T0 + timedelta(seconds=60), **base)
    await wire.publish(opened)
    await wire.publish(opened)
    await in_ledger(db, 2)
    doc = await db[STATS_DAILY].find_one({"_id": rollup_id(TENANT, "email", T0.date(), False)})
    assert doc is not None
    assert doc["counts"] == {"accepted": 1, "processing": 1, "sent": 1, "delivered": 1, "read": 1}
    assert doc["events"] == {"email_delivered": 1, "email_opened": 1}
