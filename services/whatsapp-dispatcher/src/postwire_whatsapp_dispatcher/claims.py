"""The ``whatsapp_dispatches`` collection: one claim per message, so one worker at a time sends it.

``{_id: message id, state: "processing"|"sent"|"failed", owner, lease_until, attempts, created_at,
updated_at, call_started_at, finished_at, line, phone_number_id, provider_message_id, wa_id,
error_code, error_reason, graph_code}``

The Graph API has no idempotency key, so the claim records ``call_started_at`` just before calling it. A
claim whose lease expired while a call was in flight (the process died during the call) cannot tell
whether Meta took the message: it is reported as ``unknown`` and never sent again. Released claims (the
call failed for sure, or never started) are taken over normally.
(Written after SMS's ``claims.py``; services share no code, and this one adds the in-flight rule.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from postwire_platform.mongo import Document

PROCESSING = "processing"
SENT = "sent"
FAILED = "failed"

ClaimKind = Literal["owned", "finished", "held", "unknown"]


@dataclass(frozen=True)
class Claim:
    kind: ClaimKind
    doc: Document


class Claims:
    """Atomic claim, take-over, call mark, release and finish on ``whatsapp_dispatches``."""

    def __init__(self, collection: AsyncCollection[Document], owner: str, lease: float) -> None:
        self._coll = collection
        self._owner = owner
        self._lease = timedelta(seconds=lease)

    async def acquire(self, message_id: str, now: datetime) -> Claim:
        """Insert a fresh claim, or take over a released/expired one, or report what holds it."""
        doc: Document = {
            "_id": message_id, "state": PROCESSING, "owner": self._owner,
            "lease_until": now + self._lease, "attempts": 1, "call_started_at": None,
            "created_at": now, "updated_at": now,
        }
        try:
            await self._coll.insert_one(doc)
            return Claim("owned", doc)
        except DuplicateKeyError:
            pass
        existing = await self._coll.find_one({"_id": message_id})
        if existing is None:
            return Claim("held", doc)
        if existing["state"] != PROCESSING:
            return Claim("finished", existing)
        if existing["lease_until"] >= now:
            return Claim("held", existing)
        taken = await self._coll.find_one_and_update(
            {"_id": message_id, "state": PROCESSING, "lease_until": {"$lt": now}},
            {"$set": {"owner": self._owner, "lease_until": now + self._lease, "updated_at": now},
             "$inc": {"attempts": 1}},
            return_document=ReturnDocument.BEFORE,
        )
        if taken is not None:
            if taken.get("call_started_at") is not None:
                return Claim("unknown", taken)
            return Claim("owned", taken)
        latest = await self._coll.find_one({"_id": message_id})
        if latest is not None and latest["state"] != PROCESSING:
            return Claim("finished", latest)
        return Claim("held", latest or existing)

    async def calling(self, message_id: str, now: datetime) -> None:
        """Record that the Graph API is about to be called for this message."""
        await self._coll.update_one({"_id": message_id, "owner": self._owner},
                                    {"$set": {"call_started_at": now, "lease_until": now + self._lease}})

    async def release(self, message_id: str, now: datetime, note: str) -> None:
        """Give the claim up (no call is in flight), so the delayed command can take it at once."""
        await self._coll.update_one(
            {"_id": message_id, "state": PROCESSING, "owner": self._owner},
            {"$set": {"owner": None, "lease_until": now, "call_started_at": None, "last_note": note,
                      "updated_at": now}},
        )

    async def finish(self, message_id: str, now: datetime, state: str,
                     fields: dict[str, Any]) -> Document:
        """Record the outcome once; if another worker recorded one first, return theirs."""
        done = await self._coll.find_one_and_update(
            {"_id": message_id, "state": PROCESSING},
            {"$set": {"state": state, "finished_at": now, "updated_at": now, "owner": None,
                      **fields}},
            return_document=ReturnDocument.AFTER,
        )
        if done is not None:
            return done
        recorded = await self._coll.find_one({"_id": message_id})
        if recorded is None:
            raise LookupError(f"claim {message_id} disappeared")
        return recorded
