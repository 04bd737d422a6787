"""Recording an outcome on ``email_dispatches`` (real SecantusDB): the answer is what is stored, the
first outcome stands, and it is one update, never a findAndModify (which SecantusDB answers by
scanning the whole collection: docs/performance.md, change 22)."""

from __future__ import annotations

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_email_dispatcher.claims import FAILED, SENT, Claims
from postwire_platform.clock import utcnow
from postwire_platform.ids import new_id
from postwire_platform.mongo import EMAIL_DISPATCHES, Document
from postwire_testing.mongo_commands import CollectionCommands


async def test_an_outcome_is_recorded_once_by_one_update_and_answered_as_stored(
        mongodb_url: str, db: AsyncDatabase[Document]) -> None:
    commands = CollectionCommands(EMAIL_DISPATCHES)
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url, tz_aware=True,
                                                         event_listeners=[commands])
    try:
        claims = Claims(client[db.name][EMAIL_DISPATCHES], "worker-1", lease=30.0)
        message_id = new_id()
        assert (await claims.acquire(message_id, utcnow())).kind == "owned"
        commands.names.clear()
        recorded = await claims.finish(message_id, utcnow(), SENT, {
            "transport": "relay", "outcome": "sent", "provider_message_id": "<m@example.com>",
            "smtp": {"code": 250, "text": "ok"}, "suppress": False})
        assert commands.names == ["update"]
        stored = await db[EMAIL_DISPATCHES].find_one({"_id": message_id})
        assert stored is not None
        for key, value in recorded.items():  # every field answered is the stored one
            if key in ("finished_at", "updated_at"):  # BSON keeps milliseconds
                assert abs((stored[key] - value).total_seconds()) < 0.001
            else:
                assert stored[key] == value, key
        assert recorded["state"] == SENT and recorded["owner"] is None

        # a later outcome (another delivery's) does not overwrite the first, and gets it back
        second = await claims.finish(message_id, utcnow(), FAILED,
                                     {"transport": "relay", "outcome": "soft_bounce"})
        assert second["state"] == SENT and second["provider_message_id"] == "<m@example.com>"
        again = await db[EMAIL_DISPATCHES].find_one({"_id": message_id})
        assert again is not None and again["state"] == SENT and again["outcome"] == "sent"
        assert "findAndModify" not in commands.names
    finally:
        await client.close()
