"""The ``dispatches`` collection: one claim per message, so a message is submitted by one worker at a time.

``{_id: message id, state: "processing"|"sent"|"failed", owner, lease_until, attempts, carrier,
provider_message_id, error_code, error_reason, created_at, finished_at, updated_at}``

The two writes every message makes, the fresh claim and the recorded outcome, are group-committed
(``postwire_platform.batching``): the claims of the deliveries in flight go in one ``insert_many`` and
their outcomes in one ``bulk_write``, so a busy dispatcher makes a few round trips per batch instead of
two per message. The rarer paths (a duplicate, a take-over, an outcome recorded elsewhere first) keep
their single conditional operations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pymongo import ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, PyMongoError

from postwire_platform.batching import Coalescer
from postwire_platform.mongo import Document

PROCESSING = "processing"
SENT = "sent"
FAILED = "failed"

ClaimKind = Literal["owned", "finished", "held"]
DUPLICATE_KEY = 11000


@dataclass(frozen=True)
class Claim:
    """The result of claiming: ours to submit, already finished, or held by a live lease."""

    kind: ClaimKind
    doc: Document

    @property
    def attempts(self) -> int:
        """Submissions started under this claim, this one included when owned."""
        return int(self.doc.get("attempts", 0))


class Claims:
    """Atomic claim, take-over, release and finish operations on ``dispatches``."""

    def __init__(self, collection: AsyncCollection[Document], owner: str, lease: float, *,
                 max_batch: int = 500) -> None:
        self._coll = collection
        self._owner = owner
        self._lease = timedelta(seconds=lease)
        self._inserts: Coalescer[Document, bool] = Coalescer(
            self._insert_many, max_batch=max_batch, name="claims-insert")
        self._finishes: Coalescer[tuple[str, datetime, str, dict[str, Any]], Document] = Coalescer(
            self._finish_many, max_batch=max_batch, name="claims-finish")

    async def acquire(self, message_id: str, now: datetime) -> Claim:
        """Insert a fresh claim, or take over one whose lease expired, or report what holds it."""
        doc: Document = {
            "_id": message_id, "state": PROCESSING, "owner": self._owner,
            "lease_until": now + self._lease, "attempts": 1, "created_at": now, "updated_at": now,
        }
        if await self._inserts.submit(doc):
            return Claim("owned", doc)
        existing = await self._coll.find_one({"_id": message_id})
        if existing is None:  # vanished between insert and read: look again later
            return Claim("held", doc)
        if existing["state"] != PROCESSING:
            return Claim("finished", existing)
        if existing["lease_until"] >= now:
            return Claim("held", existing)
        taken = await self._coll.find_one_and_update(
            {"_id": message_id, "state": PROCESSING, "lease_until": {"$lt": now}},
            {"$set": {"owner": self._owner, "lease_until": now + self._lease, "updated_at": now},
             "$inc": {"attempts": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if taken is not None:
            return Claim("owned", taken)
        latest = await self._coll.find_one({"_id": message_id})
        if latest is not None and latest["state"] != PROCESSING:
            return Claim("finished", latest)
        return Claim("held", latest or existing)

    async def release(self, message_id: str, now: datetime, error: str) -> None:
        """Give the lease up after a transient failure, so the scheduled retry can take it at once."""
        await self._coll.update_one(
            {"_id": message_id, "state": PROCESSING, "owner": self._owner},
            {"$set": {"owner": None, "lease_until": now, "last_error": error, "updated_at": now}},
        )

    async def finish(self, message_id: str, now: datetime, state: str,
                     fields: dict[str, Any]) -> Document:
        """Record the outcome once; if another worker recorded one first, return theirs."""
        return await self._finishes.submit((message_id, now, state, fields))

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

    async def _finish_many(self, items: list[tuple[str, datetime, str, dict[str, Any]]]
                           ) -> list[Document | BaseException]:
        """Record outcomes in one ``bulk_write``. When every claim was still ours to finish, the
        recorded documents are known without reading them back; otherwise each is settled alone."""
        ops = [UpdateOne({"_id": mid, "state": PROCESSING}, {"$set": _outcome(now, state, fields)})
               for mid, now, state, fields in items]
        result = await self._coll.bulk_write(ops, ordered=False)
        if result.matched_count == len(ops) and len({mid for mid, *_ in items}) == len(items):
            return [{"_id": mid, **_outcome(now, state, fields)} for mid, now, state, fields in items]
        # Some outcome was recorded before ours (or twice in this batch): the single conditional
        # path returns, per message, whichever outcome was recorded first.
        return [await self._finish_one(*item) for item in items]

    async def _finish_one(self, message_id: str, now: datetime, state: str,
                          fields: dict[str, Any]) -> Document:
        done = await self._coll.find_one_and_update(
            {"_id": message_id, "state": PROCESSING},
            {"$set": _outcome(now, state, fields)},
            return_document=ReturnDocument.AFTER,
        )
        if done is not None:
            return done
        recorded = await self._coll.find_one({"_id": message_id})
        if recorded is None:
            raise LookupError(f"claim {message_id} disappeared")
        return recorded


def _outcome(now: datetime, state: str, fields: dict[str, Any]) -> Document:
    return {"state": state, "finished_at": now, "updated_at": now, "owner": None, **fields}
