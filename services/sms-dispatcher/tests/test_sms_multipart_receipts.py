"""A multipart message's part receipts against a real ``dispatches`` collection (SecantusDB): the
message is announced DELIVERED once, by one part, even when the parts' receipts are handled at the
same time; each part's receipt is recorded by an update, never a findAndModify (which SecantusDB
answers by scanning the whole collection: docs/performance.md, change 22)."""

from __future__ import annotations

import asyncio

from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts.status import Status
from postwire_platform.ids import new_id
from postwire_platform.mongo import DISPATCHES, Document
from postwire_sms.receipts import SmppReceipt, from_deliver_sm, receipt_key
from postwire_sms_dispatcher.deliveries import Deliveries
from postwire_testing.doubles import KeptEvents
from postwire_testing.mongo_commands import watched

ROUTE = "carrier-a"


def receipt(carrier_id: str, stat: str) -> SmppReceipt:
    text = (f"id:{carrier_id} sub:001 dlvrd:001 submit date:2612070930 done date:2612070931 "
            f"stat:{stat} err:000 text:")
    parsed = from_deliver_sm(text.encode(), {})
    assert parsed is not None
    return parsed


async def test_parts_received_at_once_announce_delivered_once(
        mongodb_url: str, db: AsyncDatabase[Document]) -> None:
    async with watched(mongodb_url, db.name, DISPATCHES) as (collection, commands):
        sink = KeptEvents()
        deliveries = Deliveries(collection, sink)
        message_id = new_id()
        carrier_ids = [f"{n}f{message_id[-8:]}" for n in range(1, 4)]
        await db[DISPATCHES].insert_one({
            "_id": message_id, "tenant_id": "ten_parts", "provider_message_id": carrier_ids[0],
            "part_keys": [f"{ROUTE}:{receipt_key(c)}" for c in carrier_ids]})
        commands.clear()

        await asyncio.gather(*(deliveries.receipt(ROUTE, receipt(c, "DELIVRD")) for c in carrier_ids))

        [delivered] = [e for e in sink.events if e.status is Status.DELIVERED]
        assert (delivered.event_id, delivered.message_id, delivered.tenant_id) == (
            f"{message_id}:smpp:delivered", message_id, "ten_parts")
        others = sorted(e.detail["part"] for e in sink.events if e.status is Status.SENT)
        assert len(sink.events) == 3 and others == sorted({1, 2, 3} - {delivered.detail["part"]})
        assert "findAndModify" not in commands.names and "update" in commands.names

        # The announcing part's receipt again (a carrier's resend) announces again, under the same
        # event id, so reporting keeps one; another part's again is one more SENT line.
        announcer = carrier_ids[delivered.detail["part"] - 1]
        other = next(c for c in carrier_ids if c != announcer)
        sink.events.clear()
        await deliveries.receipt(ROUTE, receipt(announcer, "DELIVRD"))
        await deliveries.receipt(ROUTE, receipt(other, "DELIVRD"))
        assert [(e.status, e.event_id) for e in sink.events] == [
            (Status.DELIVERED, f"{message_id}:smpp:delivered"),
            (Status.SENT, f"smpp:{ROUTE}:{other}:DELIVRD")]


async def test_a_part_not_yet_delivered_keeps_the_message_from_delivered(
        db: AsyncDatabase[Document]) -> None:
    sink = KeptEvents()
    deliveries = Deliveries(db[DISPATCHES], sink)
    message_id = new_id()
    carrier_ids = [f"{n}e{message_id[-8:]}" for n in range(1, 3)]
    await db[DISPATCHES].insert_one({
        "_id": message_id, "tenant_id": "ten_parts", "provider_message_id": carrier_ids[0],
        "part_keys": [f"{ROUTE}:{receipt_key(c)}" for c in carrier_ids]})

    await deliveries.receipt(ROUTE, receipt(carrier_ids[0], "DELIVRD"))
    await deliveries.receipt(ROUTE, receipt(carrier_ids[1], "ENROUTE"))
    assert [e.status for e in sink.events] == [Status.SENT, Status.SENT]
    await deliveries.receipt(ROUTE, receipt(carrier_ids[1], "DELIVRD"))
    assert [e.status for e in sink.events] == [Status.SENT, Status.SENT, Status.DELIVERED]
    assert sink.events[-1].detail["part"] == 2
