"""What the three dispatchers' claim collections share: one acquisition's lease, the error for a
lease that is another's now, a write fenced by the lease, taking an expired lease over, and recording an
outcome once (fenced too when the delivery decided it without the provider).

Each dispatcher keeps its own claim protocol (``claims.py`` of each service: what a take-over may
do differs by channel); docs/reliability.md, "Claims and their leases".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pymongo.asynchronous.collection import AsyncCollection

from .mongo import Document

PROCESSING = "processing"


@dataclass
class Lease:
    """One acquisition's hold on a claim: the owner token it wrote and when its lease runs out."""

    message_id: str
    token: str
    until: datetime


class LeaseLost(Exception):
    """The claim is another acquisition's now (or finished): call nothing, release nothing."""


async def fenced(collection: AsyncCollection[Document], lease: Lease, update: Document) -> None:
    """Apply ``update`` to the claim only while it is still processing under ``lease``'s own token;
    ``LeaseLost`` when that matches nothing (another acquisition took it over, or it finished)."""
    done = await collection.update_one(
        {"_id": lease.message_id, "state": PROCESSING, "owner": lease.token}, update)
    if done.matched_count == 0:
        raise LeaseLost(f"claim {lease.message_id} is no longer {lease.token}'s")


def outcome_filter(message_id: str, lease: Lease | None = None) -> Document:
    """The claims an outcome may be recorded on: still processing and, for an outcome this delivery
    decided itself (``lease`` given), still under its own token."""
    found: Document = {"_id": message_id, "state": PROCESSING}
    if lease is not None:
        found["owner"] = lease.token
    return found


async def record_once(collection: AsyncCollection[Document], message_id: str,
                      outcome: Document, lease: Lease | None = None) -> Document:
    """Set ``outcome`` on the claim if it is still processing and return the recorded claim: the
    fields written when this call recorded them (no read), else the outcome recorded first.

    A provider's answer is recorded whoever holds the lease (it is a fact). An outcome the delivery
    decided without the provider (expired, opted out, suppressed, retries used up) is recorded only
    under ``lease``: ``LeaseLost`` when another delivery holds the claim now, since that one may be
    sending the message, and a FAILED recorded first would stand over its SENT.

    A conditional ``update_one``, not a ``findAndModify``: SecantusDB (tests, ``make run``, the
    bench) writes a findAndModify with a filter no index serves, scanning the whole collection
    each time (docs/performance.md, change 22)."""
    done = await collection.update_one(outcome_filter(message_id, lease), {"$set": outcome})
    if done.matched_count:
        return {"_id": message_id, **outcome}
    recorded = await collection.find_one({"_id": message_id})
    if recorded is None:
        raise LookupError(f"claim {message_id} disappeared")
    if recorded.get("state") == PROCESSING and lease is not None:
        raise LeaseLost(f"claim {message_id} is no longer {lease.token}'s")
    return recorded


async def take_over(collection: AsyncCollection[Document], lease: Lease,
                    now: datetime) -> Document | None:
    """Give the claim of ``lease.message_id`` to ``lease`` if it is still processing and its lease ran
    out before ``now`` (its attempts counted one more): the claim as this acquisition now holds it, or
    None when there was nothing to take over.

    An update and a read by ``_id``, not a ``findAndModify`` (which SecantusDB answers by scanning the
    whole collection: docs/performance.md, change 22). The read matches this acquisition's own token,
    so it sees the claim as taken: a mark the previous owner made before the take-over is in it, and
    one it tries after is refused by ``fenced``. None too if another acquisition took the claim in
    between (only possible once this fresh lease has run out)."""
    done = await collection.update_one(
        {"_id": lease.message_id, "state": PROCESSING, "lease_until": {"$lt": now}},
        {"$set": {"owner": lease.token, "lease_until": lease.until, "updated_at": now},
         "$inc": {"attempts": 1}})
    if done.matched_count == 0:
        return None
    return await collection.find_one({"_id": lease.message_id, "owner": lease.token})
