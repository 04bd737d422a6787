"""A batch's events for one message written as one guarded write end exactly where the per-event
conditional writes end: same status, stamps, provider id, timeline and ``published`` mark, whatever the
order, duplicates and late arrivals; and a guard that no longer matches writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts.messages import StatusEvent
from postwire_contracts.status import Channel, Status
from postwire_platform.mongo import MESSAGES, Document
from postwire_reporting.documents import READ_BACK, merged_update, message_updates

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def ev(mid: str, name: str, status: Status, seconds: float, pid: str | None = None,
       with_mid: bool = True) -> StatusEvent:
    return StatusEvent(event_id=f"{mid}:{name}", channel=Channel.SMS, status=status,
                       occurred_at=T0 + timedelta(seconds=seconds), source="test",
                       message_id=mid if with_mid else None, tenant_id="ten_t",
                       provider_message_id=pid,
                       error_code="UNDELIV" if status is Status.FAILED else None,
                       error_reason="undeliverable" if status is Status.FAILED else None)


def message(mid: str, status: str = "QUEUED", **extra: Any) -> Document:
    return {"_id": mid, "tenant_id": "ten_t", "channel": "sms", "status": status, "to": "+447911123456",
            "metadata": {}, "live": True, "accepted_at": T0, "updated_at": T0, "sent_at": None,
            "delivered_at": None, "failed_at": None, "provider_message_id": None, "error_code": None,
            "error_reason": None, "published": False,
            "timeline": [{"event_id": f"{mid}:queued", "status": "QUEUED"}], **extra}


SCENARIOS: dict[str, tuple[dict[str, Any], list[tuple[str, Status, float, str | None, bool]]]] = {
    "in order": ({}, [("processing", Status.PROCESSING, 1, None, True),
                      ("sent", Status.SENT, 2, "P1", True),
                      ("dlr", Status.DELIVERED, 3, "P1", True)]),
    "receipt overtakes sent": ({}, [("dlr", Status.DELIVERED, 3, "P1", True),
                                    ("processing", Status.PROCESSING, 1, None, True),
                                    ("sent", Status.SENT, 2, "P1", True)]),
    "duplicates in the batch": ({}, [("sent", Status.SENT, 2, "P1", True),
                                     ("sent", Status.SENT, 2, "P1", True),
                                     ("processing", Status.PROCESSING, 1, None, True)]),
    "late failure after delivery": ({"status": "DELIVERED", "delivered_at": T0,
                                     "provider_message_id": "P1"},
                                    [("fail", Status.FAILED, 9, "P1", True)]),
    "already in the timeline": ({"status": "SENT", "provider_message_id": "P1", "sent_at": T0,
                                 "timeline": [{"event_id": "m:queued", "status": "QUEUED"},
                                              {"event_id": "m:sent", "status": "SENT"}]},
                                [("sent", Status.SENT, 2, "P1", True)]),
    "two sents keep the earliest": ({"status": "SENT", "provider_message_id": "P1",
                                     "sent_at": T0 + timedelta(seconds=5)},
                                    [("sent-again", Status.SENT, 3, "P2", True),
                                     ("enroute", Status.SENT, 4, None, True)]),
    "sent_at absent, receipt first": ({"absent": ["sent_at"]},
                                      [("dlr", Status.DELIVERED, 3, "P1", True),
                                       ("sent", Status.SENT, 2, "P1", True)]),
    "failure then delivered": ({}, [("processing", Status.PROCESSING, 1, None, True),
                                    ("fail", Status.FAILED, 2, "P9", True),
                                    ("dlr", Status.DELIVERED, 3, "P9", True)]),
}


async def _final(db: AsyncDatabase[Document], mid: str) -> Document:
    doc = await db[MESSAGES].find_one({"_id": mid})
    assert doc is not None
    doc.pop("_id")
    doc["timeline"] = sorted(e["event_id"] for e in doc["timeline"])
    return doc


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_the_merged_write_ends_where_the_per_event_writes_end(
        db: AsyncDatabase[Document], name: str) -> None:
    start, specs = SCENARIOS[name]
    now = T0 + timedelta(minutes=1)
    results = []
    for way in ("per-event", "merged"):
        mid = "m"  # the same message, rebuilt from the same start for each way
        coll = db[MESSAGES]
        await coll.delete_many({})
        timeline = start.get("timeline")
        base = message(mid, **{k: v for k, v in start.items() if k not in ("timeline", "absent")})
        for key in start.get("absent", []):
            del base[key]
        if timeline:
            base["timeline"] = timeline
        await coll.insert_one(base)
        events = [ev(mid, n, st, s, pid, with_mid) for n, st, s, pid, with_mid in specs]
        if way == "per-event":
            for event in events:
                await coll.bulk_write(message_updates(event, mid, now, "b1"), ordered=False)
        else:
            current = await coll.find_one({"_id": mid}, projection=READ_BACK)
            assert current is not None
            merged = merged_update(current, events, now, "b1")
            if merged.op is not None:
                result = await coll.bulk_write([merged.op], ordered=False)
                assert result.matched_count == 1
            read_back = await coll.find_one({"_id": mid}, projection=READ_BACK)
            assert read_back is not None
            # what reading back would return is known without reading it back
            assert {k: merged.after.get(k) for k in read_back} == read_back
        results.append(await _final(db, mid))
    per_event, merged_result = results
    assert merged_result == per_event
    # a new timeline entry means the command was published: the gateway's own mark is then not needed
    assert merged_result["published"] is (name != "already in the timeline")


async def test_a_guard_that_no_longer_matches_writes_nothing(db: AsyncDatabase[Document]) -> None:
    coll = db[MESSAGES]
    await coll.insert_one(message("m"))
    read = await coll.find_one({"_id": "m"}, projection=READ_BACK)
    assert read is not None
    merged = merged_update(read, [ev("m", "sent", Status.SENT, 2, "P1")], T0, "b1")
    await coll.update_one({"_id": "m"}, {"$set": {"status": "PROCESSING"}})  # another writer
    assert merged.op is not None
    result = await coll.bulk_write([merged.op], ordered=False)
    assert result.matched_count == 0
    doc = await coll.find_one({"_id": "m"})
    assert doc is not None and doc["status"] == "PROCESSING" and len(doc["timeline"]) == 1
