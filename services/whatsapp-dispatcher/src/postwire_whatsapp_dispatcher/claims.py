"""The ``whatsapp_dispatches`` collection: one claim per message, so one worker at a time sends it.

``{_id: message id, state: "processing"|"sent"|"failed", owner, lease_until, attempts, created_at,
updated_at, call_started_at, finished_at, line, phone_number_id, provider_message_id, wa_id,
error_code, error_reason, graph_code}``

The Graph API has no idempotency key, so the claim records ``call_started_at`` just before calling it. A
claim whose lease expired while a call was in flight (the process died during the call) cannot tell
whether Meta took the message: it is reported as ``unknown`` and never sent again. Released claims (the
call failed for sure, or never started) are taken over normally.
Fresh claims are group-committed as sms-dispatcher's are: the claims of the deliveries in flight go in
one ``insert_many`` (``postwire_platform.batching``); a duplicate falls back to the single reads.
(Written after SMS's ``claims.py``; services share no code, and this one adds the in-flight rule.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, PyMongoError

from postwire_platform.batching import Coalescer
from postwire_platform.mongo import Document

PROCESSING = "processing"
SENT = "sent"
FAILED = "failed"

ClaimKind = Literal["owned", "finished", "held", "unknown"]
DUPLICATE_KEY = 11000


@dataclass(frozen=True)
class Claim:
    kind: ClaimKind
    doc: Document


class Claims:
    """Atomic claim, take-over, call mark, release and finish on ``whatsapp_dispatches``."""

    def __init__(self, collection: AsyncCollection[Document], owner: str, lease: float, *,
                 max_batch: int = 500) -> None:
        self._coll = collection
        self._owner = owner
        self._lease = timedelta(seconds=lease)
        self._inserts: Coalescer[Document, bool] = Coalescer(
            self._insert_many, max_batch=max_batch, name="whatsapp-claims-insert")

    async def acquire(self, message_id: str, now: datetime) -> Claim:
        """Insert a fresh claim, or take over a released/expired one, or report what holds it."""
        doc: Document = {
            "_id": message_id, "state": PROCESSING, "owner": self._owner,
            "lease_until": now + self._lease, "attempts": 1, "call_started_at": None,
            "created_at": now, "updated_at": now,
        }
        if await self._inserts.submit(doc):
            return Claim("owned", doc)
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

    async def _insert_many(self, docs: list[Document]) -> list[bool | BaseException]:
        """Insert fresh claims; per claim True (ours), False (one exists) or the error."""
        outcomes: list[bool | BaseException] = [True] * len(docs)
        try:
            await self._coll.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            for error in exc.details.get("writeErrors", []):
                outcomes[error["index"]] = (False if error.get("code") == DUPLICATE_KEY
                                            else PyMongoError(error.get("errmsg", "write error")))
        return outcomes

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
