"""The claims' shared writes on a real SecantusDB: an outcome recorded once (one update, answered as
stored, the first one standing), a write fenced by one acquisition's lease, and an expired lease taken
over (an update and a read, never a findAndModify)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from postwire_platform.clock import utcnow
from postwire_platform.ids import new_id
from postwire_platform.leases import PROCESSING, Lease, LeaseLost, fenced, record_once, take_over
from postwire_platform.mongo import Document
from postwire_testing.mongo_commands import watched

CLAIMS = "claims"


async def _claim(db: AsyncDatabase[Document], token: str) -> Lease:
    now = utcnow()
    lease = Lease(new_id(), token, now + timedelta(seconds=30))
    await db[CLAIMS].insert_one({"_id": lease.message_id, "state": PROCESSING, "owner": token,
                                 "lease_until": lease.until, "created_at": now})
    return lease


async def test_an_outcome_is_recorded_once_by_one_update_and_answered_as_stored(
        mongodb_url: str, db: AsyncDatabase[Document]) -> None:
    async with watched(mongodb_url, db.name, CLAIMS) as (claims, commands):
        lease = await _claim(db, "worker-1:1")
        now = utcnow()
        recorded = await record_once(claims, lease.message_id, {
            "state": "sent", "finished_at": now, "updated_at": now, "owner": None,
            "provider_message_id": "<m@example.com>", "smtp": {"code": 250, "text": "ok"}})
        assert commands.names == ["update"]
        stored = await db[CLAIMS].find_one({"_id": lease.message_id})
        assert stored is not None
        for key, value in recorded.items():  # every field answered is the stored one
            if key in ("finished_at", "updated_at"):  # BSON keeps milliseconds
                assert abs((stored[key] - value).total_seconds()) < 0.001
            else:
                assert stored[key] == value, key

        # a later outcome (another delivery's) does not overwrite the first, and gets it back
        second = await record_once(claims, lease.message_id, {"state": "failed",
                                                              "error_code": "unavailable"})
        assert second["state"] == "sent" and second["provider_message_id"] == "<m@example.com>"
        again = await db[CLAIMS].find_one({"_id": lease.message_id})
        assert again is not None and again["state"] == "sent" and "error_code" not in again
        assert "findAndModify" not in commands.names


async def test_a_fenced_write_lands_only_under_its_own_acquisitions_token(
        db: AsyncDatabase[Document]) -> None:
    lease = await _claim(db, "worker-1:1")
    await fenced(db[CLAIMS], lease, {"$set": {"mark": 1}})
    stale = Lease(lease.message_id, "worker-1:0", lease.until)  # an earlier acquisition, same process
    with pytest.raises(LeaseLost):
        await fenced(db[CLAIMS], stale, {"$set": {"mark": 2}})
    await db[CLAIMS].update_one({"_id": lease.message_id}, {"$set": {"state": "sent"}})
    with pytest.raises(LeaseLost):  # finished: nobody's any more
        await fenced(db[CLAIMS], lease, {"$set": {"mark": 3}})
    stored = await db[CLAIMS].find_one({"_id": lease.message_id})
    assert stored is not None and stored["mark"] == 1


async def test_an_outcome_decided_by_a_delivery_is_recorded_only_under_its_lease(
        db: AsyncDatabase[Document]) -> None:
    lease = await _claim(db, "worker-1:1")
    stale = Lease(lease.message_id, "worker-1:0", lease.until)  # an acquisition taken over since
    with pytest.raises(LeaseLost):
        await record_once(db[CLAIMS], lease.message_id, {"state": "failed"}, stale)
    stored = await db[CLAIMS].find_one({"_id": lease.message_id})
    assert stored is not None and stored["state"] == PROCESSING  # nothing written

    recorded = await record_once(db[CLAIMS], lease.message_id, {"state": "failed"}, lease)
    assert recorded["state"] == "failed"
    # once finished, a stale decision gets the recorded outcome back, as an answer would
    again = await record_once(db[CLAIMS], lease.message_id, {"state": "sent"}, stale)
    assert again["state"] == "failed"


async def test_an_expired_lease_is_taken_over_by_an_update_and_a_read(
        mongodb_url: str, db: AsyncDatabase[Document]) -> None:
    async with watched(mongodb_url, db.name, CLAIMS) as (claims, commands):
        first = await _claim(db, "worker-1:1")
        await fenced(claims, first, {"$set": {"mark": "before"}, "$inc": {"attempts": 1}})
        now = utcnow()
        second = Lease(first.message_id, "worker-2:1", now + timedelta(seconds=30))
        assert await take_over(claims, second, now) is None  # first's lease has not run out
        commands.clear()

        later = first.until + timedelta(seconds=1)
        taken = Lease(first.message_id, "worker-2:2", later + timedelta(seconds=30))
        doc = await take_over(claims, taken, later)
        assert commands.names == ["update", "find"]
        assert doc is not None and (doc["owner"], doc["attempts"], doc["mark"]) == (
            "worker-2:2", 2, "before")  # the previous owner's mark is in it
        assert abs((doc["lease_until"] - taken.until).total_seconds()) < 0.001
        with pytest.raises(LeaseLost):  # the previous owner's next mark is refused
            await fenced(claims, first, {"$set": {"mark": "after"}})

        again = Lease(first.message_id, "worker-3:1", later + timedelta(seconds=1))
        assert await take_over(claims, again, later) is None  # the new lease is live
        await record_once(claims, first.message_id, {"state": "sent"})
        assert await take_over(claims, again, later + timedelta(hours=1)) is None  # finished
        assert "findAndModify" not in commands.names
