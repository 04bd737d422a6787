"""Stats rollups: every status a message reaches, and every customer event, counted exactly once.

Counting rides on the writes reporting makes anyway. Each batch gets an id (``batch``); the conditional
status update that moves a message forwards also ``$push``es ``{status, batch}`` onto the message's
``transitions``, and each timeline entry carries the ``batch`` that pushed it. Both writes apply at most
once per message and status (statuses only move forwards) or per event id (the push skips an id the
timeline holds), so after the batch's write, reading the message back tells exactly which transitions
and events *this* batch applied: a duplicate, a redelivery or a concurrent replica's copy of the same
event finds its write already done and counts nothing. The increments of a whole batch then go out in
one unordered ``bulk_write`` of ``$inc`` upserts, one per rollup document.

Latencies are owned the same way: accept→delivered by the batch whose transition stamped
``delivered_at``, accept→sent by the batch that pushed the message's first SENT timeline entry.

A status implies the ones before it (a receipt that overtakes SENT still means the message was sent);
``transitions`` is in the order the writes happened, so the implied statuses are counted by the batch
whose transition first implied them. ``accepted`` is counted with a message's first transition, since
reporting never sees the gateway's QUEUED write. Counts go to the UTC day the message was accepted on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import UpdateOne

from postwire_contracts.messages import StatusEvent
from postwire_contracts.stats import COUNTER_OF, bucket_key, bucket_of, reached_with, rollup_id
from postwire_contracts.status import Status
from postwire_platform.mongo import Document

TRANSITIONS = "transitions"
BATCH = "batch"
READ_BACK_EXTRA: list[str] = ["accepted_at", "sent_at", "delivered_at", TRANSITIONS,
                              "timeline.event_id", "timeline.status", f"timeline.{BATCH}"]
"""What the recorder reads back, besides the notification's fields, to count a batch."""

_SAFE_KEY = re.compile(r"^[a-z0-9_]{1,64}$")


def counted_here(transitions: list[Any], batch: str) -> set[Status]:
    """The statuses whose count ``batch`` owns, given the message's ``transitions`` in write order."""
    reached: set[Status] = set()
    mine: set[Status] = set()
    for item in transitions:
        try:
            status = Status(item.get("status"))
        except (AttributeError, ValueError):
            continue
        implied = reached_with(status)
        if item.get(BATCH) == batch:
            mine |= implied - reached
        reached |= implied
    return mine


def applied_here(message: Document, event_id: str, batch: str) -> bool:
    """True when ``batch`` is the one that pushed ``event_id`` onto the message's timeline."""
    return any(entry.get("event_id") == event_id and entry.get(BATCH) == batch
               for entry in message.get("timeline") or [])


@dataclass
class _Rollup:
    keys: Document
    inc: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, amount: int = 1) -> None:
        self.inc[name] = self.inc.get(name, 0) + amount


@dataclass
class Tally:
    """The increments of one batch, grouped by rollup document."""

    batch: str
    rollups: dict[str, _Rollup] = field(default_factory=dict)

    def _rollup(self, message: Document, now: datetime) -> _Rollup:
        accepted = message.get("accepted_at") or now
        live = bool(message.get("live", True))
        rid = rollup_id(message["tenant_id"], message["channel"], accepted.date(), live)
        if rid not in self.rollups:
            self.rollups[rid] = _Rollup({"tenant_id": message["tenant_id"],
                                         "channel": message["channel"],
                                         "day": accepted.date().isoformat(), "live": live})
        return self.rollups[rid]

    def add_message(self, message: Document, now: datetime) -> None:
        """Count the statuses this batch's transitions made the message reach, and the latencies this
        batch owns: accept→delivered with the DELIVERED transition (which stamps ``delivered_at``),
        accept→sent with the first SENT event on the timeline (a receipt may overtake it, and the SENT
        status is then implied without a time)."""
        mine = counted_here(message.get(TRANSITIONS) or [], self.batch)
        for status in mine:
            self._rollup(message, now).add(f"counts.{COUNTER_OF[status]}")
        if Status.DELIVERED in mine:
            self._latency(message, "delivered_at", "delivered", now)
        first_sent = next((entry for entry in message.get("timeline") or []
                           if entry.get("status") == Status.SENT.value), None)
        if first_sent is not None and first_sent.get(BATCH) == self.batch:
            self._latency(message, "sent_at", "sent", now)

    def _latency(self, message: Document, stamp: str, histogram: str, now: datetime) -> None:
        accepted, reached = message.get("accepted_at"), message.get(stamp)
        if accepted is not None and reached is not None:
            millis = (reached - accepted).total_seconds() * 1000
            self._rollup(message, now).add(f"latency.{histogram}.{bucket_key(bucket_of(millis))}")

    def add_event(self, event: StatusEvent, event_type: str | None, message: Document,
                  now: datetime) -> None:
        """Count a customer event type (``sms_delivered``, ``email_opened``…) if this batch applied it."""
        if event_type and _SAFE_KEY.match(event_type) and applied_here(message, event.event_id,
                                                                        self.batch):
            self._rollup(message, now).add(f"events.{event_type}")

    def updates(self, now: datetime) -> list[UpdateOne]:
        """One ``$inc`` upsert per rollup document touched."""
        return [UpdateOne({"_id": rid}, {"$inc": r.inc, "$setOnInsert": r.keys,
                                         "$max": {"updated_at": now}}, upsert=True)
                for rid, r in sorted(self.rollups.items()) if r.inc]


def tally(batch: str, messages: Mapping[str, Document],
          events: Iterable[tuple[StatusEvent, str, str | None]], now: datetime) -> list[UpdateOne]:
    """The rollup writes of one batch: ``events`` are (event, message id, customer event type)."""
    counts = Tally(batch)
    for message in messages.values():
        counts.add_message(message, now)
    for event, mid, event_type in events:
        found = messages.get(mid)
        if found is not None:
            counts.add_event(event, event_type, found, now)
    return counts.updates(now)
