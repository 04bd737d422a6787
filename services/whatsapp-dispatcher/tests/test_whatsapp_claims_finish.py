"""Recording an outcome on ``whatsapp_dispatches`` (real SecantusDB): the answer is what is stored,
the first outcome stands, and it is one update, never a findAndModify (which SecantusDB answers by
scanning the whole collection: docs/performance.md, change 22)."""

from __future__ import annotations

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_platform.clock import utcnow
from postwire_platform.ids import new_id
from postwire_platform.mongo import WHATSAPP_DISPATCHES, Document
from postwire_testing.mongo_commands import CollectionCommands
from postwire_whatsapp_dispatcher.claims import FAILED, SENT, Claims


async def test_an_outcome_is_recorded_once_by_one_update_and_answered_as_stored(
        mongodb_url: str, db: AsyncDatabase[Document]) -> None:
    commands = CollectionCommands(WHATSAPP_DISPATCHES)
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url, tz_aware=True,
                                                         event_listeners=[commands])
    try:
        claims = Claims(client[db.name][WHATSAPP_DISPATCHES], "worker-a", 30.0)
        message_id = new_id()
        claim = await claims.acquire(message_id, utcnow())
        assert claim.kind == "owned" and claim.lease is not None
        await claims.calling(claim.lease, utcnow())
        commands.names.clear()
        recorded = await claims.finish(message_id, utcnow(), SENT, {
            "line": "platform", "phone_number_id": "106540352242922",
            "provider_message_id": "wamid.HBgM", "wa_id": "447700900123"})
        assert commands.names == ["update"]
        stored = await db[WHATSAPP_DISPATCHES].find_one({"_id": message_id})
        assert stored is not None
        for key, value in recorded.items():  # every field answered is the stored one
            if key in ("finished_at", "updated_at"):  # BSON keeps milliseconds
                assert abs((stored[key] - value).total_seconds()) < 0.001
            else:
                assert stored[key] == value, key
        assert recorded["state"] == SENT and recorded["owner"] is None

        # a later outcome (another delivery's) does not overwrite the first, and gets it back
        second = await claims.finish(message_id, utcnow(), FAILED,
                                     {"line": "platform", "error_code": "graph_unavailable"})
        assert second["state"] == SENT and second["provider_message_id"] == "wamid.HBgM"
        again = await db[WHATSAPP_DISPATCHES].find_one({"_id": message_id})
        assert again is not None and again["state"] == SENT and "error_code" not in again
        assert "findAndModify" not in commands.names
    finally:
        await client.close()
