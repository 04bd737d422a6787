"""The ``whatsapp_dispatches`` collection: one claim per message, so one worker at a time sends it.

``{_id: message id, state: "processing"|"sent"|"failed", owner, lease_until, attempts, created_at,
updated_at, call_started_at, finished_at, line, phone_number_id, provider_message_id, wa_id,
error_code, error_reason, graph_code}``

The Graph API has no idempotency key, so the claim records ``call_started_at`` just before calling it. A
claim whose lease expired while a call was in flight (the process died during the call) cannot tell
whether Meta took the message: it is reported as ``unknown`` and never sent again. Released claims (the
call failed for sure, or never started) are taken over normally.
(Written after SMS's ``claims.py``; services share no code, and this one adds the in-flight rule.)

Each acquisition (a fresh claim or a take-over) writes an ``owner`` token of its own, the process's
name and a counter, and gets it back on its ``Lease``: two deliveries of one message in one process
(a redelivery, the gateway's republish, a delayed retry) fence each other as two processes do. The
call mark is the check right before the call: it matches only this acquisition's token on a claim
still processing, renews the lease from the current clock, and raises ``LeaseLost`` when it matches
nothing. A handler that stalled past its lease (a MongoDB outage, pacing) and was taken over then
calls nothing, and neither releases nor retries: the message is another delivery's now. A release
matches the token too, so it never wipes another acquisition's lease or mark. The outcome is
recorded on any claim still processing: Meta's answer is a fact whoever holds the lease, and the
first one recorded stands. An outcome decided without an answer (disabled, opted out, no line,
outcome unknown, retries used up) is recorded only under the delivery's own token.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from postwire_platform.leases import PROCESSING, Lease, fenced, record_once, take_over
from postwire_platform.mongo import Document

SENT = "sent"
FAILED = "failed"

ClaimKind = Literal["owned", "finished", "held", "unknown"]


@dataclass(frozen=True)
class Claim:
    kind: ClaimKind
    doc: Document
    lease: Lease | None = None
    """This acquisition's lease when the claim is owned (or taken over as ``unknown``)."""


class Claims:
    """Atomic claim, take-over, call mark, release and finish on ``whatsapp_dispatches``."""

    def __init__(self, collection: AsyncCollection[Document], owner: str, lease: float) -> None:
        self._coll = collection
        self._owner = owner
        self._lease = timedelta(seconds=lease)
        self._tokens = itertools.count(1)

    async def acquire(self, message_id: str, now: datetime) -> Claim:
        """Insert a fresh claim, or take over a released/expired one, or report what holds it."""
        lease = Lease(message_id, f"{self._owner}:{next(self._tokens)}", now + self._lease)
        doc: Document = {
            "_id": message_id, "state": PROCESSING, "owner": lease.token,
            "lease_until": lease.until, "attempts": 1, "call_started_at": None,
            "created_at": now, "updated_at": now,
        }
        try:
            await self._coll.insert_one(doc)
            return Claim("owned", doc, lease)
        except DuplicateKeyError:
            pass
        existing = await self._coll.find_one({"_id": message_id})
        if existing is None:
            return Claim("held", doc)
        if existing["state"] != PROCESSING:
            return Claim("finished", existing)
        if existing["lease_until"] >= now:
            return Claim("held", existing)
        taken = await take_over(self._coll, lease, now)
        if taken is not None:  # a call mark of the previous owner is in it
            if taken.get("call_started_at") is not None:
                return Claim("unknown", taken, lease)
            return Claim("owned", taken, lease)
        latest = await self._coll.find_one({"_id": message_id})
        if latest is not None and latest["state"] != PROCESSING:
            return Claim("finished", latest)
        return Claim("held", latest or existing)

    async def calling(self, lease: Lease, now: datetime) -> None:
        """Record that the Graph API is about to be called under ``lease``, renewing it from ``now``;
        ``LeaseLost`` when the claim is another's or finished."""
        until = now + self._lease
        await fenced(self._coll, lease,
                     {"$set": {"call_started_at": now, "lease_until": until, "updated_at": now}})
        lease.until = until

    async def release(self, lease: Lease, now: datetime, note: str) -> None:
        """Give the claim up (no call is in flight), so the delayed command can take it at once;
        ``LeaseLost`` when it was not this acquisition's any more (then there is nothing to retry)."""
        await fenced(self._coll, lease, {
            "$set": {"owner": None, "lease_until": now, "call_started_at": None, "last_note": note,
                     "updated_at": now}})

    async def finish(self, message_id: str, now: datetime, state: str, fields: dict[str, Any],
                     lease: Lease | None = None) -> Document:
        """Record the outcome once; if another worker recorded one first, return theirs. With
        ``lease`` (an outcome decided without Meta's answer), only under that lease:
        ``LeaseLost`` when another delivery holds the claim now."""
        return await record_once(self._coll, message_id, {
            "state": state, "finished_at": now, "updated_at": now, "owner": None, **fields}, lease)
