"""The ``email_dispatches`` collection: one claim per message, so one worker at a time delivers it.

The lease protocol of sms-dispatcher's ``dispatches`` (services never share code, so it is repeated).

``{_id: message id, state: "processing"|"sent"|"failed", owner, lease_until, attempts, transport,
provider_message_id, outcome, smtp {code, enhanced, text}, error_code, error_reason, created_at,
finished_at, updated_at, data_at}``

``data_at`` is set by the owner right before an SMTP DATA command: from then on the server may have the
message. A claim taken over from a dead owner with ``data_at`` set may have been delivered already; the
dispatcher does not send it again (at most once). A release (the attempt's outcome is known) clears it.

Each acquisition (a fresh claim or a take-over) writes an ``owner`` token of its own, the process's
name and a counter, and gets it back on its ``Lease``: two deliveries of one message in one process
(a redelivery, the gateway's republish, a delayed retry) fence each other as two processes do. The
``data_at`` mark is the check right before DATA: it matches only this acquisition's token on a claim
still processing, renews the lease from the current clock, and raises ``LeaseLost`` when it matches
nothing. A handler that stalled past its lease (a MongoDB outage, a slow relay) and was taken over
then sends nothing, and neither releases nor retries: the message is another delivery's now. A
release matches the token too, so it never wipes another acquisition's lease or mark. The outcome is
recorded on any claim still processing: the server's answer is a fact whoever holds the lease, and
the first one recorded stands. An outcome decided without an answer (suppressed, outcome unknown,
deferrals used up) is recorded only under the delivery's own token.
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

ClaimKind = Literal["owned", "finished", "held"]


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

    def __init__(self, collection: AsyncCollection[Document], owner: str, lease: float) -> None:
        self._coll = collection
        self._owner = owner
        self._lease = timedelta(seconds=lease)
        self._tokens = itertools.count(1)

    async def acquire(self, message_id: str, now: datetime) -> Claim:
        """Insert a fresh claim, or take over one whose lease expired, or report what holds it."""
        lease = Lease(message_id, f"{self._owner}:{next(self._tokens)}", now + self._lease)
        doc: Document = {
            "_id": message_id, "state": PROCESSING, "owner": lease.token,
            "lease_until": lease.until, "attempts": 1, "created_at": now, "updated_at": now,
        }
        try:
            await self._coll.insert_one(doc)
            return Claim("owned", doc, lease)
        except DuplicateKeyError:
            pass
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

    async def release(self, lease: Lease, now: datetime, error: str) -> None:
        """Give the lease up after a transient failure, so the scheduled retry can take it at once;
        ``LeaseLost`` when it was not this acquisition's any more (then there is nothing to retry)."""
        await fenced(self._coll, lease, {
            "$set": {"owner": None, "lease_until": now, "last_error": error, "updated_at": now},
            "$unset": {"data_at": ""}})

    async def mark_data(self, lease: Lease, now: datetime) -> None:
        """Record that DATA is about to be sent under ``lease``, renewing it from ``now``;
        ``LeaseLost`` when the claim is another's or finished."""
        until = now + self._lease
        await fenced(self._coll, lease,
                     {"$set": {"data_at": now, "lease_until": until, "updated_at": now}})
        lease.until = until

    async def finish(self, message_id: str, now: datetime, state: str, fields: dict[str, Any],
                     lease: Lease | None = None) -> Document:
        """Record the outcome once; if another worker recorded one first, return theirs. With
        ``lease`` (an outcome decided without the server's answer), only under that lease:
        ``LeaseLost`` when another delivery holds the claim now."""
        return await record_once(self._coll, message_id, {
            "state": state, "finished_at": now, "updated_at": now, "owner": None, **fields}, lease)
