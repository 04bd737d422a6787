"""The ``dispatches`` collection: one claim per message, so a message is submitted by one worker at a time.

``{_id: message id, state: "processing"|"sent"|"failed", owner, lease_until, attempts, carrier,
provider_message_id, error_code, error_reason, created_at, finished_at, updated_at}``

Each acquisition (a fresh claim or a take-over of an expired one) writes an ``owner`` token of its own,
the process's name and a counter, and gets it back on its ``Lease``: two deliveries of one message in
one process (a redelivery, the gateway's republish, a delayed retry) fence each other as two processes
do. Right before the submit goes out (inside the SMPP bind's window and throughput slot) the
dispatcher checks its lease against the clock: while more than a quarter of it is left there is
nothing to write; otherwise it is renewed by a write that matches only this acquisition's token on a
claim still processing, and ``LeaseLost`` is raised when that matches nothing. A handler that stalled
past its lease (a MongoDB outage, a full window) and was taken over then submits nothing, and
neither releases nor retries: the message is another delivery's now. A release matches the token
too, so it never wipes another acquisition's lease. The outcome is recorded on any claim still
processing: a carrier's answer is a fact whoever holds the lease, and the first one recorded stands.
An outcome the dispatcher decided without the carrier's answer (expired, opted out, no route, retries
used up) is recorded only under its own token, so it never stands over a delivery that took over.

The two writes every message makes, the fresh claim and the recorded outcome, are group-committed
(``postwire_platform.batching``): the claims of the deliveries in flight go in one ``insert_many`` and
their outcomes in one ``bulk_write``, so a busy dispatcher makes a few round trips per batch instead of
two per message. The rarer paths (a duplicate, a take-over, a lease renewal, an outcome recorded
elsewhere first) keep their single conditional operations.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, PyMongoError

from postwire_platform.batching import Coalescer
from postwire_platform.leases import (
    PROCESSING,
    Lease,
    LeaseLost,
    fenced,
    outcome_filter,
    record_once,
    take_over,
)
from postwire_platform.mongo import Document

SENT = "sent"
FAILED = "failed"

ClaimKind = Literal["owned", "finished", "held"]
DUPLICATE_KEY = 11000

Finish = tuple[str, datetime, str, dict[str, Any], Lease | None]
"""An outcome to record: message id, time, state, fields, and the lease it is fenced by (if any)."""


@dataclass(frozen=True)
class Claim:
    """The result of claiming: ours to submit, already finished, or held by a live lease."""

    kind: ClaimKind
    doc: Document
    lease: Lease | None = None
    """This acquisition's lease when the claim is owned."""

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
        self._margin = self._lease / 4
        self._tokens = itertools.count(1)
        self._inserts: Coalescer[Document, bool] = Coalescer(
            self._insert_many, max_batch=max_batch, name="claims-insert")
        self._finishes: Coalescer[Finish, Document] = Coalescer(
            self._finish_many, max_batch=max_batch, name="claims-finish")

    async def acquire(self, message_id: str, now: datetime) -> Claim:
        """Insert a fresh claim, or take over one whose lease expired, or report what holds it."""
        lease = Lease(message_id, f"{self._owner}:{next(self._tokens)}", now + self._lease)
        doc: Document = {
            "_id": message_id, "state": PROCESSING, "owner": lease.token,
            "lease_until": lease.until, "attempts": 1, "created_at": now, "updated_at": now,
        }
        if await self._inserts.submit(doc):
            return Claim("owned", doc, lease)
        existing = await self._coll.find_one({"_id": message_id})
        if existing is None:  # vanished between insert and read: look again later
            return Claim("held", doc)
        if existing["state"] != PROCESSING:
            return Claim("finished", existing)
        if existing["lease_until"] >= now:
            return Claim("held", existing)
        taken = await take_over(self._coll, lease, now)
        if taken is not None:
            return Claim("owned", taken, lease)
        latest = await self._coll.find_one({"_id": message_id})
        if latest is not None and latest["state"] != PROCESSING:
            return Claim("finished", latest)
        return Claim("held", latest or existing)

    async def hold(self, lease: Lease, now: datetime) -> None:
        """Make sure ``lease`` is still this acquisition's, right before its submit goes out: no
        write while more than a quarter of it is left, else a renewal from ``now``; ``LeaseLost``
        when the claim is another's or finished."""
        if now < lease.until - self._margin:
            return
        until = now + self._lease
        await fenced(self._coll, lease, {"$set": {"lease_until": until, "updated_at": now}})
        lease.until = until

    async def release(self, lease: Lease, now: datetime, error: str) -> None:
        """Give the lease up after a transient failure, so the scheduled retry can take it at once;
        ``LeaseLost`` when it was not this acquisition's any more (then there is nothing to retry)."""
        await fenced(self._coll, lease, {
            "$set": {"owner": None, "lease_until": now, "last_error": error, "updated_at": now}})

    async def finish(self, message_id: str, now: datetime, state: str, fields: dict[str, Any],
                     lease: Lease | None = None) -> Document:
        """Record the outcome once; if another worker recorded one first, return theirs. With
        ``lease`` (an outcome decided without the carrier), only under that lease: ``LeaseLost``
        when another delivery holds the claim now (``postwire_platform.leases.record_once``)."""
        return await self._finishes.submit((message_id, now, state, fields, lease))

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

    async def _finish_many(self, items: list[Finish]) -> list[Document | BaseException]:
        """Record outcomes in one ``bulk_write``. When every claim was still ours to finish, the
        recorded documents are known without reading them back; otherwise each is settled alone."""
        ops = [UpdateOne(outcome_filter(mid, lease), {"$set": _outcome(now, state, fields)})
               for mid, now, state, fields, lease in items]
        result = await self._coll.bulk_write(ops, ordered=False)
        if result.matched_count == len(ops) and len({mid for mid, *_ in items}) == len(items):
            return [{"_id": mid, **_outcome(now, state, fields)}
                    for mid, now, state, fields, _ in items]
        # Some outcome was recorded before ours (or twice in this batch), or a lease was lost: the
        # single conditional path returns, per message, whichever outcome was recorded first.
        return [await self._finish_one(*item) for item in items]

    async def _finish_one(self, message_id: str, now: datetime, state: str,
                          fields: dict[str, Any], lease: Lease | None) -> Document | BaseException:
        try:
            return await record_once(self._coll, message_id, _outcome(now, state, fields), lease)
        except LeaseLost as exc:
            return exc


def _outcome(now: datetime, state: str, fields: dict[str, Any]) -> Document:
    return {"state": state, "finished_at": now, "updated_at": now, "owner": None, **fields}
