"""Writes a batch of events: the messages' timelines and statuses, the notifications, then the ledger.

Per batch: resolve provider ids to message ids (one ``find``, only for events without a message id) and
read those messages (one ``find``), while the batch is looked up in the ``events`` ledger (one ``find``,
in the same round trip: an event already there was fully handled before and is dropped); apply the new
events to their messages (one unordered ``bulk_write``), add what they changed to the stats rollups (one
``bulk_write``, see ``rollups.py``) while publishing the applied events' notifications (one
``StatusChanges`` per channel, or a ``StatusChanged`` where a channel has one); if the writes taught a
message a provider id, look for parked events waiting for it and apply them the same way; and only then
write the ledger (one unordered ``insert_many``; a duplicate key there is another replica that won the
race). An event whose message is not known yet is parked in the ledger, and the messages are asked once
more after parking (``_rescue``): with the look for parked events made after the write that teaches the
id, a replica parking concurrently and a replica teaching concurrently cannot both miss each other.

The ledger entry is the commit record: every message write is idempotent (the timeline push skips an
event id it already holds, statuses only move forwards), so a batch that fails anywhere is redelivered
and redone, and nothing is lost or applied twice. A crash between the notifications and the ledger, or a
rollup write that fails beside them, can at worst repeat a notification, with the same ``event_id``. The
stats rollups never count twice; a batch that fails after its message writes and before its rollup write
is redone without counting what those writes changed (they are already applied), so counts can fall
short by such a batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import TypeAlias

from prometheus_client import Counter, Histogram
from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, ConnectionFailure, ExecutionTimeout, WTimeoutError

from postwire_contracts import topology
from postwire_contracts.messages import InboundEvent, StatusChanged, StatusChanges, StatusEvent
from postwire_platform import metrics, telemetry
from postwire_platform.broker import BrokerUnavailable, Publisher
from postwire_platform.clock import utcnow
from postwire_platform.ids import new_id
from postwire_platform.mongo import EVENTS, MESSAGES, STATS_DAILY, Document

from .documents import (
    READ_BACK,
    event_from_doc,
    inbound_event_doc,
    merged_update,
    message_updates,
    moved_status,
    status_changed,
    status_event_doc,
)
from .rollups import tally

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


def _taught(applied: list[Applied], before: dict[str, Document], after: dict[str, Document], *,
            certain: bool) -> dict[ProviderKey, str]:
    """The provider ids (with their message ids) that parked events may now be matched by: those a
    message carries after these events were written and did not carry before, and those of events
    already in their timeline before (a batch redone after failing between its write and its look
    for parked events). When the write was not ``certain`` (another writer raced it), every
    provider id the messages of events with one carry."""
    taught: dict[ProviderKey, str] = {}
    for event, mid in applied:
        old, new = before.get(mid), after.get(mid)
        if not event.provider_message_id or old is None or new is None:
            continue
        pid = new.get("provider_message_id")
        if pid and (not certain or pid != old.get("provider_message_id") or event.event_id in {
                e.get("event_id") for e in old.get("timeline") or [] if isinstance(e, dict)}):
            taught[(str(new.get("channel")), str(pid))] = mid
    return taught


class Recorder:
    """Processes batches of events against MongoDB and publishes the resulting notifications."""

    def __init__(self, db: AsyncDatabase[Document], publisher: Publisher,
                 origins: telemetry.Origins | None = None, *, batch_notes: bool = True) -> None:
        self._events = db[EVENTS]
        self._messages = db[MESSAGES]
        self._stats = db[STATS_DAILY]
        self._publisher = publisher
        self._origins = origins or telemetry.Origins()
        self._batch_notes = batch_notes

    async def process(self, items: list[Event]) -> None:
        """Record ``items`` (possibly with duplicates); raises if anything could not be written.

        The ledger entries are written after the messages: an event found in the ledger has been
        applied, which is what a redelivered event is checked against. The messages are read in
        the same round trip as the ledger is checked.
        """
        now = utcnow()
        unique: dict[str, Event] = {}
        for item in items:
            unique.setdefault(item.event_id, item)
        statuses = [e for e in unique.values() if isinstance(e, StatusEvent)]
        inbound = [e for e in unique.values() if isinstance(e, InboundEvent)]

        async def resolve_and_read() -> tuple[dict[str, str | None], dict[str, Document]]:
            resolved = await self._resolve(statuses)
            return resolved, await self._read({mid for mid in resolved.values() if mid})

        known, (resolved, current) = await asyncio.gather(self._known(list(unique)),
                                                          resolve_and_read())
        # New events, and parked ones (a redelivered receipt) whose message is now known.
        applied = [(e, mid) for e in statuses if (mid := resolved[e.event_id]) is not None
                   and (e.event_id not in known or known[e.event_id].get("message_id") is None)]
        late = await self._apply(applied, exclude=set(unique), current=current)
        await self._apply(late)
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

    async def _parked_for(self, by_pid: dict[ProviderKey, str], exclude: set[str]) -> list[Applied]:
        if not by_pid:
            return []
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
        rescued = await self._parked_for(by_pid, exclude=set())  # none asked for when by_pid is empty
        await self._apply(rescued)
        await self._mark_matched(rescued)
        return rescued

    async def _read(self, ids: Iterable[str]) -> dict[str, Document]:
        """The messages ``ids`` as ``_apply`` needs them (``READ_BACK``)."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        return {doc["_id"]: doc async for doc in self._messages.find(
            {"_id": {"$in": wanted}}, projection=READ_BACK)}

    async def _apply(self, applied: list[Applied], *, exclude: set[str] | None = None,
                     current: dict[str, Document] | None = None) -> list[Applied]:
        """Write events to their messages, count what they changed and announce them; returns the
        parked events (not in ``exclude``) waiting for a provider id these writes taught a message.

        The look for parked events goes out after the write, so that a replica parking one meanwhile
        finds the message when it looks again (``_rescue``), beside the rollups and the notifications,
        and only when a message learned an id (``_taught``): a batch of receipts teaches none.

        Read the messages, fold each one's events into one guarded write (``merged_update``), and
        write them all in one ``bulk_write``; the states after the write are then known without
        reading them back. If any guard did not match (another writer got there in between), redo
        the batch with the per-event conditional writes and read the messages back, as before.
        Either way the timeline entries and transitions carry the batch id the rollups count by.
        """
        if not applied:
            return []
        now, batch = utcnow(), new_id()
        by_message: dict[str, list[StatusEvent]] = {}
        for event, mid in applied:
            by_message.setdefault(mid, []).append(event)
        ids = sorted(by_message)
        if current is None:  # ``current``: read already, beside the ledger check
            current = await self._read(ids)
        current = {mid: current[mid] for mid in ids if mid in current}
        merged = {mid: merged_update(doc, by_message[mid], now, batch)
                  for mid, doc in current.items()}
        ops = [m.op for m in merged.values() if m.op is not None]
        result = await self._messages.bulk_write(ops, ordered=False) if ops else None
        matched = len(ops) if result is None else result.matched_count
        merged_in_full = matched == len(ops)
        if merged_in_full:
            messages = {mid: m.after for mid, m in merged.items()}
        else:
            log.info("messages written concurrently; applying events one by one",
                     extra={"messages": len(ops), "matched": matched})
            await self._messages.bulk_write(
                [op for event, mid in applied for op in message_updates(event, mid, now, batch)],
                ordered=False)
            messages = await self._read(ids)
        notes: list[tuple[StatusChanged, str | None, str]] = []
        for event, mid in applied:
            message = messages.get(mid)
            if message is None:
                log.warning("event for an unknown message",
                            extra={"event_id": event.event_id, "message_id": mid})
                continue
            note = status_changed(event, message)
            if moved_status(event, message):
                metrics.status_reached(note.channel, note.tenant_id, event.status,
                                       at=event.occurred_at, accepted_at=message.get("accepted_at"),
                                       error_code=event.error_code)
            notes.append((note, message.get("trace"), event.event_id))
        taught = _taught(applied, current, messages, certain=merged_in_full)
        # The rollups, the look for parked events and the notifications are independent: one round
        # trip for all of them.
        late, _ = await asyncio.gather(
            self._parked_for(taught, exclude or set()),
            asyncio.gather(
                self._count_stats(batch, messages, applied, [note for note, _, _ in notes], now),
                self._announce_all(notes)))
        return late

    async def _count_stats(self, batch: str, messages: dict[str, Document], applied: list[Applied],
                           notes: list[StatusChanged], now: datetime) -> None:
        """One ``bulk_write`` of ``$inc`` upserts to ``stats_daily`` for what this batch changed.

        Two replicas creating the same day's document at once can make one upsert fail with a duplicate
        key; the document exists then, so that write is simply tried again (bounded).
        """
        types = {note.event_id: note.event_type for note in notes}
        ops = tally(batch, messages, ((e, mid, types.get(e.event_id)) for e, mid in applied
                                      if e.event_id in types), now)
        for _ in range(3):
            if not ops:
                return
            try:
                await self._stats.bulk_write(ops, ordered=False)
                return
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if not errors or any(e.get("code") != DUPLICATE_KEY for e in errors):
                    raise
                ops = [ops[e["index"]] for e in errors]
        # Not worth failing (and redelivering) the events over: their own writes are done.
        log.error("stats rollups kept hitting duplicate keys; increments dropped",
                  extra={"rollups": len(ops)})

    async def _announce_all(self, notes: list[tuple[StatusChanged, str | None, str]]) -> None:
        """Publish the notifications: per channel one ``StatusChanges`` in recorded order (unless
        ``batch_notes`` is off), a lone change as a plain ``StatusChanged``; in parallel."""
        if not self._batch_notes:
            await asyncio.gather(*(self._announce(*item) for item in notes))
            return
        by_channel: dict[str, list[tuple[StatusChanged, str | None, str]]] = {}
        for item in notes:
            by_channel.setdefault(item[0].channel.value, []).append(item)
        await asyncio.gather(*(self._announce(*group[0]) if len(group) == 1
                               else self._announce_batch(group) for group in by_channel.values()))

    async def _announce(self, note: StatusChanged, parent: str | None, event_id: str) -> None:
        """Publish in the message's own trace, linked to the trace the event came in with."""
        with telemetry.message_trace("reporting notify", parent, origin=self._origins.get(event_id)):
            await self._publisher.publish(note, topology.notify_key(note.channel),
                                          message_id=note.event_id)

    async def _announce_batch(self, group: list[tuple[StatusChanged, str | None, str]]) -> None:
        """Publish one channel's changes as one ``StatusChanges``; each change's ``reporting
        notify`` span is in its message's own trace, and its traceparent travels in the batch."""
        traceparents: dict[str, str] = {}
        for note, parent, event_id in group:
            with telemetry.message_trace("reporting notify", parent,
                                         origin=self._origins.get(event_id)):
                if (traceparent := telemetry.traceparent()) is not None:
                    traceparents[note.event_id] = traceparent
        changes = [note for note, _, _ in group]
        await self._publisher.publish(StatusChanges(changes=changes, traceparents=traceparents),
                                      topology.notify_key(changes[0].channel),
                                      message_id=f"{changes[0].event_id}+{len(changes)}")

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
