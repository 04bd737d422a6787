"""Reporting against real RabbitMQ and SecantusDB: statuses, timelines, dedupe, matching, notifications."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts import topology
from postwire_contracts.messages import InboundEvent, StatusEvents
from postwire_contracts.status import Channel, Status
from postwire_platform.mongo import EVENTS, MESSAGES, Document

from .reporting_support import T0, Bus, bus, event, eventually, has_timeline, insert_message, message
from .reporting_support import running_reporting as running


@pytest.fixture
async def wire(amqp_url: str, mongodb_url: str, db_name: str) -> AsyncIterator[Bus]:
    async with running(amqp_url, mongodb_url, db_name), bus(amqp_url) as b:
        yield b


async def test_processing_sent_delivered_moves_status_and_builds_the_timeline(
        wire: Bus, db: AsyncDatabase[Document]) -> None:
    mid = await insert_message(db)
    await wire.publish(event(Status.PROCESSING, message_id=mid, seconds=1))
    await wire.publish(event(Status.SENT, message_id=mid, provider_id="c-1", seconds=2))
    await wire.publish(event(Status.DELIVERED, message_id=mid, provider_id="c-1", seconds=3))
    await eventually(has_timeline(db, mid, 4))
    doc = await message(db, mid)
    assert doc["status"] == "DELIVERED"
    assert [e["status"] for e in sorted(doc["timeline"], key=lambda e: e["occurred_at"])] == [
        "QUEUED", "PROCESSING", "SENT", "DELIVERED"]
    assert doc["provider_message_id"] == "c-1"
    assert doc["sent_at"] < doc["delivered_at"]
    entry = doc["timeline"][-1]
    assert {"event_id", "status", "occurred_at", "recorded_at", "source", "provider_message_id",
            "provider_status", "error_code", "error_reason", "detail", "raw"} <= entry.keys()

    async def three_notes() -> bool:
        return len(await wire.notes_for(mid)) >= 3
    await eventually(three_notes)
    notes = {n.event_status: n for n in await wire.notes_for(mid)}
    assert notes[Status.PROCESSING].event_type is None
    assert notes[Status.SENT].event_type == "sms_sent"
    delivered = notes[Status.DELIVERED]
    assert delivered.event_type == "sms_delivered" and delivered.status is Status.DELIVERED
    assert (delivered.tenant_id, delivered.recipient, delivered.metadata, delivered.live) == (
        "ten_test", "+447700900123", {"order": "42"}, False)


async def test_events_published_together_are_each_recorded_and_announced(
        wire: Bus, db: AsyncDatabase[Document]) -> None:
    mid = await insert_message(db)
    together = StatusEvents(events=[event(Status.PROCESSING, message_id=mid, seconds=1),
                                    event(Status.SENT, message_id=mid, provider_id="c-9", seconds=2)])
    await wire.publisher.publish(together, topology.status_key(Channel.SMS), message_id="pair-1")
    await eventually(has_timeline(db, mid, 3))
    doc = await message(db, mid)
    assert (doc["status"], doc["provider_message_id"]) == ("SENT", "c-9")
    assert sorted(e["event_id"] for e in doc["timeline"][1:]) == sorted(
        e.event_id for e in together.events)

    async def two_notes() -> bool:
        return len(await wire.notes_for(mid)) >= 2
    await eventually(two_notes)
    assert sorted(n.event_id for n in await wire.notes_for(mid)) == sorted(
        e.event_id for e in together.events)
    assert await db[EVENTS].count_documents({"message_id": mid}) == 2


async def test_events_of_several_messages_published_together_are_each_recorded(
        wire: Bus, db: AsyncDatabase[Document]) -> None:
    # a dispatcher's ``StatusGroups`` sends the receipts and outcomes of several messages in one
    a, b = await insert_message(db), await insert_message(db)
    together = StatusEvents(events=[
        event(Status.PROCESSING, message_id=a, seconds=1),
        event(Status.SENT, message_id=a, provider_id="c-a", seconds=2),
        event(Status.SENT, message_id=b, provider_id="c-b", seconds=2),
        event(Status.DELIVERED, message_id=a, provider_id="c-a", seconds=3),
        event(Status.FAILED, message_id=b, provider_id="c-b", seconds=4, error_code="UNDELIV"),
    ])
    await wire.publisher.publish(together, topology.status_key(Channel.SMS), message_id="group-1")
    await eventually(has_timeline(db, a, 4))
    await eventually(has_timeline(db, b, 3))
    doc_a, doc_b = await message(db, a), await message(db, b)
    assert (doc_a["status"], doc_a["provider_message_id"]) == ("DELIVERED", "c-a")
    assert (doc_b["status"], doc_b["provider_message_id"], doc_b["error_code"]) == (
        "FAILED", "c-b", "UNDELIV")

    async def five_notes() -> bool:
        return len(await wire.notes_for(a)) + len(await wire.notes_for(b)) >= 5
    await eventually(five_notes)
    assert sorted(n.event_id for n in [*await wire.notes_for(a), *await wire.notes_for(b)]) == sorted(
        e.event_id for e in together.events)


async def test_delivered_before_sent_keeps_delivered_and_records_both(
        wire: Bus, db: AsyncDatabase[Document]) -> None:
    mid = await insert_message(db)
    await wire.publish(event(Status.DELIVERED, message_id=mid, provider_id="c-2", seconds=3))
    await eventually(has_timeline(db, mid, 2))
    await wire.publish(event(Status.SENT, message_id=mid, provider_id="c-2", seconds=2))
    await eventually(has_timeline(db, mid, 3))
    doc = await message(db, mid)
    assert doc["status"] == "DELIVERED"
    assert {e["status"] for e in doc["timeline"]} == {"QUEUED", "SENT", "DELIVERED"}
    assert "sent_at" in doc  # the late SENT still says when it was sent

    async def two_notes() -> bool:
        return len(await wire.notes_for(mid)) >= 2
    await eventually(two_notes)
    late_sent = next(n for n in await wire.notes_for(mid) if n.event_status is Status.SENT)
    assert late_sent.status is Status.DELIVERED


async def test_the_same_event_twice_is_recorded_and_announced_once(
        wire: Bus, db: AsyncDatabase[Document]) -> None:
    mid = await insert_message(db)
    sent = event(Status.SENT, message_id=mid, provider_id="c-3", event_id=f"{mid}:sent")
    await wire.publish(sent)
    await eventually(has_timeline(db, mid, 2))
    await wire.publish(sent)  # a redelivery after it was recorded
    await asyncio.gather(wire.publish(sent), wire.publish(sent))  # and twice within one batch
    marker = event(Status.DELIVERED, message_id=mid, provider_id="c-3", seconds=5)
    await wire.publish(marker)
    await eventually(has_timeline(db, mid, 3))
    await asyncio.sleep(0.3)
    doc = await message(db, mid)
    assert [e["status"] for e in doc["timeline"]].count("SENT") == 1
    assert await db[EVENTS].count_documents({"message_id": mid}) == 2

    async def two_notes() -> bool:
        return len(await wire.notes_for(mid)) >= 2
    await eventually(two_notes)
    await asyncio.sleep(0.3)
    assert [n.event_id for n in await wire.notes_for(mid)].count(sent.event_id) == 1


async def test_an_event_with_only_the_provider_id_finds_its_message(
        wire: Bus, db: AsyncDatabase[Document]) -> None:
    mid = await insert_message(db, status=Status.SENT, provider_message_id="c-4")
    await wire.publish(event(Status.DELIVERED, provider_id="c-4", provider_status="DELIVRD",
                             raw="id:c-4 stat:DELIVRD"))
    await eventually(has_timeline(db, mid, 2))
    doc = await message(db, mid)
    assert doc["status"] == "DELIVERED"
    assert doc["timeline"][-1]["raw"] == "id:c-4 stat:DELIVRD"
    assert doc["timeline"][-1]["provider_status"] == "DELIVRD"


async def test_an_unknown_provider_id_is_parked_then_applied_when_sent_brings_it(
        wire: Bus, db: AsyncDatabase[Document]) -> None:
    mid = await insert_message(db)
    dlr = event(Status.DELIVERED, provider_id="c-5", seconds=4)
    await wire.publish(dlr)

    async def parked() -> bool:
        return await db[EVENTS].find_one({"_id": dlr.event_id}) is not None
    await eventually(parked)
    stored = await db[EVENTS].find_one({"_id": dlr.event_id})
    assert stored is not None
    assert stored["message_id"] is None and stored["unmatched_provider_id"] == "c-5"
    assert (await message(db, mid))["status"] == "QUEUED"

    await wire.publish(event(Status.SENT, message_id=mid, provider_id="c-5", seconds=2))
    await eventually(has_timeline(db, mid, 3))
    doc = await message(db, mid)
    assert doc["status"] == "DELIVERED"

    async def marked() -> bool:  # the ledger is updated after the message, in the same batch
        matched = await db[EVENTS].find_one({"_id": dlr.event_id})
        return bool(matched and matched["message_id"] == mid
                    and "unmatched_provider_id" not in matched)
    await eventually(marked)

    async def both_notes() -> bool:
        return {n.event_status for n in await wire.notes_for(mid)} == {Status.SENT,
                                                                       Status.DELIVERED}
    await eventually(both_notes)


async def test_failed_after_delivered_is_recorded_but_does_not_move_the_status(
        wire: Bus, db: AsyncDatabase[Document]) -> None:
    mid = await insert_message(db, status=Status.SENT, provider_message_id="c-6")
    await wire.publish(event(Status.DELIVERED, message_id=mid, seconds=3))
    await eventually(has_timeline(db, mid, 2))
    await wire.publish(event(Status.FAILED, message_id=mid, seconds=4, error_code="UNDELIV",
                             error_reason="late failure"))
    await eventually(has_timeline(db, mid, 3))
    doc = await message(db, mid)
    assert doc["status"] == "DELIVERED"
    assert "failed_at" not in doc and doc.get("error_code") is None
    assert doc["timeline"][-1]["error_code"] == "UNDELIV"
    notes = []
    for _ in range(50):
        notes = await wire.notes_for(mid)
        if len(notes) == 2:
            break
        await asyncio.sleep(0.1)
    # recorded and notified, but no sms_failed webhook contradicting the delivery
    assert [(n.event_status, n.event_type) for n in notes] == [
        (Status.DELIVERED, "sms_delivered"), (Status.FAILED, None)]


async def test_failed_before_delivery_sets_the_error(wire: Bus, db: AsyncDatabase[Document]) -> None:
    mid = await insert_message(db)
    await wire.publish(event(Status.FAILED, message_id=mid, error_code="invalid_destination",
                             error_reason="rejected"))
    await eventually(has_timeline(db, mid, 2))
    doc = await message(db, mid)
    assert (doc["status"], doc["error_code"], doc["error_reason"]) == (
        "FAILED", "invalid_destination", "rejected")
    assert "failed_at" in doc


async def test_a_batch_redone_after_a_crash_does_not_apply_twice(
        wire: Bus, db: AsyncDatabase[Document]) -> None:
    # As if a previous run wrote the message but died before the ledger entry: the redelivery redoes
    # the batch, and the timeline push recognises the event id.
    mid = await insert_message(db)
    sent = event(Status.SENT, message_id=mid, provider_id="c-7", event_id=f"{mid}:sent")
    await db[MESSAGES].update_one({"_id": mid}, {"$push": {"timeline": {
        "event_id": sent.event_id, "status": "SENT", "occurred_at": sent.occurred_at}}})
    await wire.publish(sent)

    async def in_ledger() -> bool:
        return await db[EVENTS].find_one({"_id": sent.event_id}) is not None
    await eventually(in_ledger)
    doc = await message(db, mid)
    assert doc["status"] == "SENT" and len(doc["timeline"]) == 2


async def test_inbound_events_are_kept_in_the_ledger(wire: Bus, db: AsyncDatabase[Document]) -> None:
    mo = InboundEvent(event_id=f"mo:{uuid.uuid4().hex}", channel=Channel.SMS, sender="+447700900123",
                      recipient="Postwire", body="STOP", received_at=T0)
    await wire.publisher.publish(mo, topology.inbound_key(Channel.SMS))

    async def stored() -> bool:
        return await db[EVENTS].find_one({"_id": mo.event_id}) is not None
    await eventually(stored)
    doc = await db[EVENTS].find_one({"_id": mo.event_id})
    assert doc is not None
    assert (doc["channel"], doc["sender"], doc["body"], doc["message_id"]) == (
        "sms", "+447700900123", "STOP", None)


async def test_an_event_type_carried_by_the_event_names_the_notification(
        wire: Bus, db: AsyncDatabase[Document]) -> None:
    """Email bounces, complaints, opens and clicks name their own customer event type."""
    mid = await insert_message(db)
    await wire.publish(event(Status.SENT, message_id=mid, seconds=1))
    await wire.publish(event(Status.FAILED, message_id=mid, seconds=2, error_code="hard_bounce",
                             event_type="email_hard_bounce", detail={"smtp_code": 550}))
    await eventually(has_timeline(db, mid, 3))
    doc = await message(db, mid)
    assert doc["status"] == "FAILED" and doc["error_code"] == "hard_bounce"
    bounce = next(e for e in doc["timeline"] if e["status"] == "FAILED")
    assert bounce["event_type"] == "email_hard_bounce"

    async def two_notes() -> bool:
        return len(await wire.notes_for(mid)) >= 2
    await eventually(two_notes)
    types = {n.event_status: n.event_type for n in await wire.notes_for(mid)}
    assert types == {Status.SENT: "sms_sent", Status.FAILED: "email_hard_bounce"}
