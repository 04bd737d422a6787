"""Recording an outcome on ``whatsapp_dispatches`` (real SecantusDB): one update, never a
findAndModify (which SecantusDB answers by scanning the whole collection: docs/performance.md,
change 22). What the answer holds and that the first outcome stands:
``postwire_platform.leases.record_once``'s tests."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from postwire_platform.clock import utcnow
from postwire_platform.ids import new_id
from postwire_platform.mongo import WHATSAPP_DISPATCHES, Document
from postwire_testing.mongo_commands import watched
from postwire_whatsapp_dispatcher.claims import FAILED, SENT, Claims


async def test_an_outcome_after_the_call_mark_is_recorded_by_one_update(
        mongodb_url: str, db: AsyncDatabase[Document]) -> None:
    async with watched(mongodb_url, db.name, WHATSAPP_DISPATCHES) as (collection, commands):
        claims = Claims(collection, "worker-a", 30.0)
        message_id = new_id()
        claim = await claims.acquire(message_id, utcnow())
        assert claim.kind == "owned" and claim.lease is not None
        await claims.calling(claim.lease, utcnow())
        commands.clear()
        recorded = await claims.finish(message_id, utcnow(), SENT, {
            "line": "platform", "provider_message_id": "wamid.HBgM", "wa_id": "447700900123"})
        assert commands.names == ["update"]
        assert recorded["state"] == SENT and recorded["owner"] is None
        stored = await db[WHATSAPP_DISPATCHES].find_one({"_id": message_id})
        assert stored is not None and stored["state"] == SENT and stored["wa_id"] == "447700900123"
        second = await claims.finish(message_id, utcnow(), FAILED,
                                     {"line": "platform", "error_code": "graph_unavailable"})
        assert second["state"] == SENT and second["provider_message_id"] == "wamid.HBgM"
        assert "findAndModify" not in commands.names
