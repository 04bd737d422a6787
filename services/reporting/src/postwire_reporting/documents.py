"""Pure builders of what reporting writes and publishes: ledger entries, message updates, notifications.

The field names are the agreements of ``docs/architecture.md`` (the ``messages`` document and its
``timeline``, the ``events`` ledger).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from pymongo import UpdateOne

from postwire_contracts.messages import InboundEvent, StatusChanged, StatusEvent
from postwire_contracts.status import Channel, Status, allowed_from, webhook_event_type
from postwire_platform.mongo import Document

TIMESTAMP_FIELD: dict[Status, str] = {
    Status.SENT: "sent_at",
    Status.DELIVERED: "delivered_at",
    Status.READ: "read_at",
    Status.FAILED: "failed_at",
}
"""The message field stamped with the event's time when an event moves the status to this one."""

READ_BACK: list[str] = ["tenant_id", "channel", "to", "status", "metadata", "live",
                        "provider_message_id"]
"""The projection of ``messages`` read back to build notifications."""

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


def timeline_entry(event: StatusEvent, recorded_at: datetime) -> Document:
    """The entry ``$push``ed onto the message's ``timeline``."""
    return {
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
    }


def message_updates(event: StatusEvent, message_id: str, recorded_at: datetime) -> list[UpdateOne]:
    """The writes one event makes to its message, all idempotent (two per event, mostly).

    - push the timeline entry unless the timeline already holds this event id; a SENT event also
      records the provider's id and the earliest ``sent_at`` (even when it arrives after DELIVERED);
    - another event that names both our message and a provider id (a receipt that raced ahead of
      SENT) teaches the message that id unless it already has one;
    - move the status forwards only (the filter lists the statuses ``event.status`` may replace),
      stamping ``sent_at``/``delivered_at``/``failed_at`` and, for FAILED, the error fields.
    """
    pid = event.provider_message_id
    push: dict[str, Any] = {"$push": {"timeline": timeline_entry(event, recorded_at)}}
    if event.status is Status.SENT:
        push["$min"] = {"sent_at": event.occurred_at}
        if pid:
            push["$set"] = {"provider_message_id": pid}
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
                             {"$set": changes}))
    return ops


def status_changed(event: StatusEvent, message: Document) -> StatusChanged:
    """The notification of ``event`` recorded on ``message`` (its state read back after the write)."""
    channel = Channel(message.get("channel") or event.channel)
    status = Status(message["status"])
    # A FAILED that arrives after a delivery does not fail the message: it stays in the timeline, but
    # the customer, already told "delivered", gets no contradicting sms_failed webhook.
    contradicted = event.status is Status.FAILED and status is not Status.FAILED
    return StatusChanged(
        event_id=event.event_id,
        event_type=None if contradicted else webhook_event_type(channel, event.status),
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


def _recipient(to: Any) -> str:
    if isinstance(to, list):
        return ",".join(str(item) for item in to)
    return "" if to is None else str(to)


def _plain(value: Any) -> Any:
    if isinstance(value, Channel | Status):
        return value.value
    return value
