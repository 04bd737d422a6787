"""Recording an outcome on ``email_dispatches`` (real SecantusDB): one update, never a findAndModify
(which SecantusDB answers by scanning the whole collection: docs/performance.md, change 22). What
the answer holds and that the first outcome stands: ``postwire_platform.leases.record_once``'s
tests."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from postwire_email_dispatcher.claims import FAILED, SENT, Claims
from postwire_platform.clock import utcnow
from postwire_platform.ids import new_id
from postwire_platform.mongo import EMAIL_DISPATCHES, Document
from postwire_testing.mongo_commands import watched


async def test_an_outcome_is_recorded_by_one_update(mongodb_url: str,
                                                    db: AsyncDatabase[Document]) -> None:
    async with watched(mongodb_url, db.name, EMAIL_DISPATCHES) as (collection, commands):
        claims = Claims(collection, "worker-1", lease=30.0)
        message_id = new_id()
        assert (await claims.acquire(message_id, utcnow())).kind == "owned"
        commands.clear()
        recorded = await claims.finish(message_id, utcnow(), SENT, {
            "transport": "relay", "outcome": "sent", "provider_message_id": "<m@example.com>"})
        assert commands.names == ["update"]
        assert recorded["state"] == SENT and recorded["owner"] is None
        second = await claims.finish(message_id, utcnow(), FAILED,
                                     {"transport": "relay", "outcome": "soft_bounce"})
        assert second["state"] == SENT and second["provider_message_id"] == "<m@example.com>"
        assert "findAndModify" not in commands.names
