"""Pure builders of what reporting writes and publishes: ledger entries, message updates, notifications.

The field names are the agreements of ``docs/architecture.md`` (the ``messages`` document and its
``timeline``, the ``events`` ledger).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
from pymongo import UpdateOne

from postwire_contracts.messages import InboundEvent, StatusChanged, StatusEvent
from postwire_contracts.status import Channel, Status, allowed_from, webhook_event_type
from postwire_platform.mongo import Document

from .rollups import BATCH, READ_BACK_EXTRA, TRANSITIONS

TIMESTAMP_FIELD: dict[Status, str] = {
    Status.SENT: "sent_at",
    Status.DELIVERED: "delivered_at",
    Status.READ: "read_at",
    Status.FAILED: "failed_at",
}
"""The message field stamped with the event's time when an event moves the status to this one."""

READ_BACK: list[str] = ["tenant_id", "channel", "to", "status", "metadata", "live",
                        "provider_message_id", "read_at", "failed_at", "trace", "published",
                        *READ_BACK_EXTRA]
"""The projection of ``messages`` read back to build notifications, metrics, trace links and the stats
rollups (``READ_BACK_EXTRA`` holds ``accepted_at``, ``sent_at`` and ``delivered_at``), and whether the
gateway has marked the message published yet."""

_STATUS_FIELDS: tuple[str, ...] = StatusEvent.__struct_fields__


def status_event_doc(event: StatusEvent, message_id: str | None, recorded_at: datetime) -> Document:
    """The ``events`` ledger entry of a status event; unmatched ones carry ``unmatched_provider_id``."""
    doc: Document = {"_id": event.event_id, "kind": "event.status.v1"}
    for name in _STATUS_FIELDS:
        if name != "event_id":
            doc[name] = _plain(getattr(event, name))
    doc["message_id"] = message_id
    doc["recorded_at"] = recorded_at
    if message_id is None and event.provider_message_id:
        doc["unmatched_provider_id"] = event.provider_message_id
    return doc


def inbound_event_doc(event: InboundEvent, recorded_at: datetime) -> Document:
    """The ``events`` ledger entry of an inbound (mobile-originated) message."""
    doc: Document = {"_id": event.event_id, "kind": "event.inbound.v1"}
    for name in InboundEvent.__struct_fields__:
        if name != "event_id":
            doc[name] = _plain(getattr(event, name))
    doc["message_id"] = None
    doc["recorded_at"] = recorded_at
    return doc


def event_from_doc(doc: Document) -> StatusEvent:
    """Rebuild a parked status event from its ledger entry."""
    fields = {name: doc[name] for name in _STATUS_FIELDS if name != "event_id" and name in doc}
    fields["event_id"] = doc["_id"]
    return msgspec.convert(fields, StatusEvent, from_attributes=False, strict=False)


def timeline_entry(event: StatusEvent, recorded_at: datetime, batch: str | None = None) -> Document:
    """The entry ``$push``ed onto the message's ``timeline`` (``batch``: the reporting batch pushing it)."""
    entry: Document = {
        "event_id": event.event_id,
        "status": event.status.value,
        "occurred_at": event.occurred_at,
        "recorded_at": recorded_at,
        "source": event.source,
        "provider_message_id": event.provider_message_id,
        "provider_status": event.provider_status,
        "error_code": event.error_code,
        "error_reason": event.error_reason,
        "detail": event.detail,
        "raw": event.raw,
        "event_type": event.event_type,
    }
    if batch is not None:
        entry[BATCH] = batch
    return entry


def message_updates(event: StatusEvent, message_id: str, recorded_at: datetime,
                    batch: str) -> list[UpdateOne]:
    """The writes one event makes to its message, all idempotent (two per event, mostly).

    - push the timeline entry unless the timeline already holds this event id, and mark the message
      ``published`` (an event means its command was published and consumed: the gateway's own mark,
      which comes later, then changes nothing); a SENT event also records the provider's id and the
      earliest ``sent_at`` (even when it arrives after DELIVERED);
    - another event that names both our message and a provider id (a receipt that raced ahead of
      SENT) teaches the message that id unless it already has one;
    - move the status forwards only (the filter lists the statuses ``event.status`` may replace),
      stamping ``sent_at``/``delivered_at``/``failed_at`` and, for FAILED, the error fields, and
      appending ``{status, batch}`` to ``transitions``.

    ``batch`` marks the timeline entry and the transition, so the stats rollups can tell which of these
    conditional writes this batch's were (``rollups.py``).
    """
    pid = event.provider_message_id
    push: dict[str, Any] = {"$push": {"timeline": timeline_entry(event, recorded_at, batch)},
                            "$set": {"published": True}}
    if event.status is Status.SENT:
        push["$min"] = {"sent_at": event.occurred_at}
        if pid:
            push["$set"]["provider_message_id"] = pid
    ops = [UpdateOne({"_id": message_id, "timeline.event_id": {"$ne": event.event_id}}, push)]
    if pid and event.message_id and event.status is not Status.SENT:
        ops.append(UpdateOne({"_id": message_id, "provider_message_id": None},
                             {"$set": {"provider_message_id": pid}}))
    allowed = allowed_from(event.status)
    if allowed:
        changes: dict[str, Any] = {"status": event.status.value, "updated_at": recorded_at}
        stamp = TIMESTAMP_FIELD.get(event.status)
        if stamp:
            changes[stamp] = event.occurred_at
        if event.status is Status.FAILED:
            changes["error_code"] = event.error_code
            changes["error_reason"] = event.error_reason
        ops.append(UpdateOne({"_id": message_id, "status": {"$in": [s.value for s in allowed]}},
                             {"$set": changes, "$push": {TRANSITIONS: {"status": event.status.value,
                                                                       BATCH: batch}}}))
    return ops


_GUARDED = frozenset({"provider_message_id", "sent_at", "delivered_at", "read_at", "failed_at"})
"""Fields of ``READ_BACK`` a merged write may set, so its guard checks them."""


@dataclass(frozen=True)
class Merged:
    """One message's events of a batch as a single guarded write, and the message after it."""

    op: UpdateOne | None
    """None when the events change nothing (all already in the timeline, no status to move)."""
    after: Document


def merged_update(message: Document, events: list[StatusEvent], recorded_at: datetime,
                  batch: str) -> Merged:
    """The effect of ``message_updates`` for every one of ``events``, in order, as one write.

    ``message`` is the document as read just before (``READ_BACK``, which holds the timeline's ids,
    statuses and batches and the transitions). The
    write is guarded by what that read saw (the status, the provider id, and the absence of the event
    ids it pushes), so it applies in full or, if anything wrote the message meanwhile, not at all: the
    caller then falls back to the per-event conditional writes, which are idempotent. On the
    MongoDB-wire server a write costs about the same whatever it changes, so this is one write per
    message and batch instead of two or three per event. ``after`` is what reading the message back
    with ``READ_BACK`` would return after the write (the rollups count from it).
    """
    after = dict(message)
    seen = {e.get("event_id") for e in message.get("timeline") or [] if isinstance(e, dict)}
    entries: list[Document] = []
    transitions: list[Document] = []
    for event in events:
        pid = event.provider_message_id
        if event.event_id not in seen:
            seen.add(event.event_id)
            entries.append(timeline_entry(event, recorded_at, batch))
            if event.status is Status.SENT:
                # ``$min`` as the server applies it: an absent field takes the value, but null
                # sorts before any date and stays (the status move below stamps it then)
                if "sent_at" not in after or (after["sent_at"] is not None
                                              and event.occurred_at < after["sent_at"]):
                    after["sent_at"] = event.occurred_at
                if pid:
                    after["provider_message_id"] = pid
        if pid and event.message_id and event.status is not Status.SENT \
                and after.get("provider_message_id") is None:
            after["provider_message_id"] = pid
        allowed = allowed_from(event.status)
        if allowed and after.get("status") in {s.value for s in allowed}:
            after["status"] = event.status.value
            after["updated_at"] = recorded_at
            stamp = TIMESTAMP_FIELD.get(event.status)
            if stamp:
                after[stamp] = event.occurred_at
            if event.status is Status.FAILED:
                after["error_code"] = event.error_code
                after["error_reason"] = event.error_reason
            transitions.append({"status": event.status.value, BATCH: batch})
    if entries and message.get("published") is False:  # as ``message_updates`` does; not guarded,
        after["published"] = True                       # since it only ever goes from false to true
    changed = {k: v for k, v in after.items()
               if k not in ("timeline", TRANSITIONS) and (k not in message or message[k] != v)}
    if entries:
        after["timeline"] = [*(message.get("timeline") or []),
                             *({"event_id": e["event_id"], "status": e["status"], BATCH: batch}
                               for e in entries)]
    if transitions:
        after[TRANSITIONS] = [*(message.get(TRANSITIONS) or []), *transitions]
    if not entries and not changed:
        return Merged(None, after)
    # the write applies only to the document that was read: the same status, and the same values of
    # the read fields it sets (the others, ``updated_at`` and the error fields, go with the status)
    guard: dict[str, Any] = {"_id": message["_id"], "status": message.get("status"),
                             **{k: message.get(k) for k in changed if k in _GUARDED}}
    if entries:
        guard["timeline.event_id"] = {"$nin": [e["event_id"] for e in entries]}
    update: dict[str, Any] = {}
    if entries or transitions:
        update["$push"] = {}
    if entries:
        update["$push"]["timeline"] = {"$each": entries}
    if transitions:
        update["$push"][TRANSITIONS] = {"$each": transitions}
    if changed:
        update["$set"] = changed
    return Merged(UpdateOne(guard, update), after)


def status_changed(event: StatusEvent, message: Document) -> StatusChanged:
    """The notification of ``event`` recorded on ``message`` (its state read back after the write)."""
    channel = Channel(message.get("channel") or event.channel)
    status = Status(message["status"])
    # A FAILED that arrives after a delivery does not fail the message: it stays in the timeline, but
    # the customer, already told "delivered", gets no contradicting sms_failed webhook.
    contradicted = event.status is Status.FAILED and status is not Status.FAILED
    return StatusChanged(
        event_id=event.event_id,
        event_type=None if contradicted else (event.event_type
                                              or webhook_event_type(channel, event.status)),
        tenant_id=message["tenant_id"],
        message_id=message["_id"],
        channel=channel,
        status=status,
        event_status=event.status,
        occurred_at=event.occurred_at,
        recipient=_recipient(message.get("to")),
        live=bool(message.get("live", True)),
        provider_message_id=event.provider_message_id or message.get("provider_message_id"),
        error_code=event.error_code,
        error_reason=event.error_reason,
        metadata={str(k): str(v) for k, v in (message.get("metadata") or {}).items()},
        detail=event.detail,
    )


def moved_status(event: StatusEvent, message: Document) -> bool:
    """True when ``event`` is what brought ``message`` (read back after the write) to its status.

    Counts each message once per status: the status field was stamped with this event's time
    (``sent_at`` keeps the earliest SENT; the others are set only by the move itself).
    """
    stamp = TIMESTAMP_FIELD.get(event.status)
    at = message.get(stamp) if stamp else None
    if not isinstance(at, datetime) or abs(at - event.occurred_at) >= timedelta(milliseconds=1):
        return False  # MongoDB keeps milliseconds
    if event.status is Status.SENT:
        return True
    status = message.get("status")
    return status == event.status.value or (event.status is Status.DELIVERED
                                            and status == Status.READ.value)


def _recipient(to: Any) -> str:
    if isinstance(to, list):
        return ",".join(str(item) for item in to)
    return "" if to is None else str(to)


def _plain(value: Any) -> Any:
    if isinstance(value, Channel | Status):
        return value.value
    return value
