"""Writes a batch of events: the messages' timelines and statuses, the notifications, then the ledger.

Per batch: resolve provider ids to message ids (one ``find``), look the batch up in the ``events``
ledger (one ``find``: an event already there was fully handled before and is dropped), apply the new
events, and parked ones whose provider id a message has just learned, to their messages (one unordered
``bulk_write``), read those messages back (one ``find``) and publish one ``StatusChanged`` per applied
event, and only then write the ledger (one unordered ``insert_many``; a duplicate key there is another
replica that won the race). The ledger entry is the commit record: every message write is idempotent
(the timeline push skips an event id it already holds, statuses only move forwards), so a batch that
fails anywhere is redelivered and redone, and nothing is lost or applied twice. A crash between the
notifications and the ledger can at worst repeat a notification, with the same ``event_id``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TypeAlias

from prometheus_client import Counter, Histogram
from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, ConnectionFailure, ExecutionTimeout, WTimeoutError

from postwire_contracts import topology
from postwire_contracts.messages import InboundEvent, StatusEvent
from postwire_platform.broker import BrokerUnavailable, Publisher
from postwire_platform.clock import utcnow
from postwire_platform.mongo import EVENTS, MESSAGES, Document

from .documents import (
    READ_BACK,
    event_from_doc,
    inbound_event_doc,
    message_updates,
    status_changed,
    status_event_doc,
)

log = logging.getLogger(__name__)

Event: TypeAlias = StatusEvent | InboundEvent
Applied: TypeAlias = tuple[StatusEvent, str]
"""An event and the id of the message it is applied to."""
ProviderKey: TypeAlias = tuple[str, str]
"""(channel, provider message id): provider ids are unique per channel only."""

DUPLICATE_KEY = 11000

BATCH_SIZE = Histogram("postwire_reporting_batch_size", "Events per written batch",
                       buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500))
EVENTS_RECORDED = Counter("postwire_reporting_events", "Events handled by outcome", ["outcome"])


def is_transient(exc: BaseException) -> bool:
    """True for failures that a later retry can cure (a database or broker that is unreachable)."""
    return isinstance(exc, ConnectionFailure | ExecutionTimeout | WTimeoutError | BrokerUnavailable
                      | OSError | TimeoutError)


def _key(event: StatusEvent) -> ProviderKey:
    return (event.channel.value, event.provider_message_id or "")


class Recorder:
    """Processes batches of events against MongoDB and publishes the resulting notifications."""

    def __init__(self, db: AsyncDatabase[Document], publisher: Publisher) -> None:
        self._events = db[EVENTS]
        self._messages = db[MESSAGES]
        self._publisher = publisher

    async def process(self, items: list[Event]) -> None:
        """Record ``items`` (possibly with duplicates); raises if anything could not be written."""
        now = utcnow()
        unique: dict[str, Event] = {}
        for item in items:
            unique.setdefault(item.event_id, item)
        statuses = [e for e in unique.values() if isinstance(e, StatusEvent)]
        inbound = [e for e in unique.values() if isinstance(e, InboundEvent)]
        resolved = await self._resolve(statuses)
        known = await self._known(list(unique))
        # New events, and parked ones (a redelivered receipt) whose message is now known.
        applied = [(e, mid) for e in statuses if (mid := resolved[e.event_id]) is not None
                   and (e.event_id not in known or known[e.event_id].get("message_id") is None)]
        late = await self._parked_to_apply(applied, exclude=set(unique))
        await self._apply(applied + late)
        new = [e for e in statuses if e.event_id not in known]
        await self._insert([status_event_doc(e, resolved[e.event_id], now) for e in new]
                           + [inbound_event_doc(e, now) for e in inbound if e.event_id not in known])
        await self._mark_matched([(e, mid) for e, mid in applied if e.event_id in known] + late)
        parked = [e for e in new if resolved[e.event_id] is None and e.provider_message_id]
        rescued = await self._rescue(parked)
        self._count(len(items), len(applied), len(late) + len(rescued), len(parked) - len(rescued),
                    len(inbound))

    async def _resolve(self, events: list[StatusEvent]) -> dict[str, str | None]:
        """Each event's message id: its own, or the message that carries its provider id."""
        known: dict[ProviderKey, str] = {
            _key(e): e.message_id for e in events if e.message_id and e.provider_message_id}
        wanted = {_key(e) for e in events if not e.message_id and e.provider_message_id}
        known.update(await self._messages_by_provider_id(wanted - known.keys()))
        return {e.event_id: e.message_id or known.get(_key(e)) for e in events}

    async def _messages_by_provider_id(self, keys: Iterable[ProviderKey]) -> dict[ProviderKey, str]:
        wanted = set(keys)
        if not wanted:
            return {}
        cursor = self._messages.find(
            {"provider_message_id": {"$in": sorted({pid for _, pid in wanted})}},
            projection=["channel", "provider_message_id"])
        found: dict[ProviderKey, str] = {}
        async for doc in cursor:
            key = (str(doc.get("channel")), str(doc.get("provider_message_id")))
            if key in wanted:
                found[key] = doc["_id"]
        return found

    async def _known(self, event_ids: list[str]) -> dict[str, Document]:
        """Ledger entries that already exist for these ids (handled before, or parked)."""
        cursor = self._events.find({"_id": {"$in": event_ids}}, projection=["message_id"])
        return {doc["_id"]: doc async for doc in cursor}

    async def _parked_to_apply(self, applied: list[Applied], *, exclude: set[str]) -> list[Applied]:
        """Parked events whose provider id is carried by a message of this batch, with its id."""
        by_pid = {_key(e): mid for e, mid in applied if e.provider_message_id}
        if not by_pid:
            return []
        return await self._parked_for(by_pid, exclude)

    async def _parked_for(self, by_pid: dict[ProviderKey, str], exclude: set[str]) -> list[Applied]:
        cursor = self._events.find({"unmatched_provider_id": {"$in": sorted({p for _, p in by_pid})},
                                    "message_id": None})
        late: list[Applied] = []
        async for doc in cursor:
            mid = by_pid.get((str(doc.get("channel")), str(doc["unmatched_provider_id"])))
            if mid is not None and doc["_id"] not in exclude:
                late.append((event_from_doc(doc), mid))
        if late:
            log.info("parked events matched", extra={"count": len(late)})
        return late

    async def _rescue(self, parked: list[StatusEvent]) -> list[Applied]:
        """Apply just-parked events whose message learned the provider id meanwhile.

        Another replica may have written that SENT after this batch resolved ids and looked for parked
        events before this batch parked them; looking once more after parking closes that gap.
        """
        if not parked:
            return []
        by_pid = await self._messages_by_provider_id({_key(e) for e in parked})
        if not by_pid:
            return []
        rescued = await self._parked_for(by_pid, exclude=set())
        await self._apply(rescued)
        await self._mark_matched(rescued)
        return rescued

    async def _apply(self, applied: list[Applied]) -> None:
        """Write events to their messages, then announce them."""
        if not applied:
            return
        now = utcnow()
        ops = [op for event, mid in applied for op in message_updates(event, mid, now)]
        await self._messages.bulk_write(ops, ordered=False)
        await self._notify(applied)

    async def _notify(self, applied: list[Applied]) -> None:
        """Publish one StatusChanged per applied event, with the message's state after the write."""
        ids = sorted({mid for _, mid in applied})
        messages = {doc["_id"]: doc async for doc in
                    self._messages.find({"_id": {"$in": ids}}, projection=READ_BACK)}
        publishes = []
        for event, mid in applied:
            message = messages.get(mid)
            if message is None:
                log.warning("event for an unknown message",
                            extra={"event_id": event.event_id, "message_id": mid})
                continue
            note = status_changed(event, message)
            publishes.append(self._publisher.publish(note, topology.notify_key(note.channel),
                                                     message_id=note.event_id))
        await asyncio.gather(*publishes)

    async def _insert(self, docs: list[Document]) -> None:
        """Write ledger entries; one that exists already (a concurrent replica's) is fine."""
        if not docs:
            return
        try:
            await self._events.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            log.info("events recorded concurrently elsewhere", extra={"count": len(errors)})

    async def _mark_matched(self, matched: list[Applied]) -> None:
        """Give parked ledger entries their message id; they are no longer unmatched."""
        if matched:
            await self._events.bulk_write([
                UpdateOne({"_id": event.event_id},
                          {"$set": {"message_id": mid}, "$unset": {"unmatched_provider_id": ""}})
                for event, mid in matched], ordered=False)

    @staticmethod
    def _count(received: int, applied: int, late: int, parked: int, inbound: int) -> None:
        BATCH_SIZE.observe(received)
        outcomes = {"applied": applied, "late": late, "parked": parked, "inbound": inbound,
                    "duplicate": max(0, received - applied - parked - inbound)}
        for outcome, count in outcomes.items():
            if count:
                EVENTS_RECORDED.labels(outcome).inc(count)
        log.debug("batch recorded", extra={"received": received, **outcomes})
