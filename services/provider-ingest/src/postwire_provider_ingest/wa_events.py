"""Meta's WhatsApp notifications normalised into ``StatusEvent``s and ``InboundEvent``s.

Statuses: ``event_id`` is ``wa:<wamid>:<status>``, so a notification Meta delivers twice is one event
(reporting records an event id once); our message id comes back in ``biz_opaque_callback_data``, the
wamid is the provider id. ``sent``/``delivered``/``read``/``failed`` map to SENT/DELIVERED/READ/FAILED;
the order they arrive in does not matter (reporting moves a status forwards only, every event lands in
the timeline). Inbound messages: ``event_id`` is ``wa-in:<wamid>``. ``raw`` is the status or message
object exactly as Meta sent it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import msgspec

from postwire_contracts.messages import InboundEvent, StatusEvent
from postwire_contracts.status import Channel, Status
from postwire_whatsapp import cloud_api
from postwire_whatsapp.webhooks import InboundMessage, Metadata, StatusUpdate, Timestamp

SOURCE = "meta-webhook"

STATUSES: dict[str, Status] = {
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.READ,
    "failed": Status.FAILED,
}

_OUR_ID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
"""Our message ids are ULIDs; other software on a tenant's own number may put anything there."""


class _RawValue(msgspec.Struct, frozen=True, kw_only=True):
    statuses: list[msgspec.Raw] = []
    messages: list[msgspec.Raw] = []


class _RawChange(msgspec.Struct, frozen=True, kw_only=True):
    value: _RawValue = _RawValue()


class _RawEntry(msgspec.Struct, frozen=True, kw_only=True):
    changes: list[_RawChange] = []


class RawEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """The same notification with each status and message kept as the bytes Meta sent."""

    entry: list[_RawEntry] = []


raw_envelope_decoder = msgspec.json.Decoder(RawEnvelope)


def occurred(timestamp: Timestamp, now: datetime) -> datetime:
    """Meta's Unix-seconds timestamp (a string) as a UTC datetime; ``now`` when unreadable."""
    try:
        seconds = int(timestamp)
    except (TypeError, ValueError):
        return now
    if seconds <= 0:
        return now
    return datetime.fromtimestamp(seconds, UTC)


def status_event(update: StatusUpdate, metadata: Metadata, tenant_id: str | None, raw: bytes,
                 now: datetime) -> StatusEvent | None:
    """The event of one status; None for a status value we do not track (logged by the caller)."""
    status = STATUSES.get(update.status)
    if status is None:
        return None
    callback = update.biz_opaque_callback_data
    detail: dict[str, Any] = {"phone_number_id": metadata.phone_number_id}
    if update.recipient_id:
        detail["recipient_id"] = update.recipient_id
    if update.pricing:
        detail["pricing"] = update.pricing
    if update.conversation:
        detail["conversation"] = update.conversation
    error_code = error_reason = None
    if update.errors:
        first = update.errors[0]
        detail["errors"] = [msgspec.to_builtins(e) for e in update.errors]
        if status is Status.FAILED:
            error_code = str(first.code)
            meaning = cloud_api.REASONS.get(first.code)
            error_reason = f"{meaning} (Meta: {first.reason})" if meaning else first.reason
    if status is Status.FAILED and error_code is None:
        error_code, error_reason = "failed", "Meta reported the message as failed"
    return StatusEvent(
        event_id=f"wa:{update.id}:{update.status}",
        channel=Channel.WHATSAPP,
        status=status,
        occurred_at=occurred(update.timestamp, now),
        source=SOURCE,
        message_id=callback if callback and _OUR_ID.match(callback) else None,
        tenant_id=tenant_id,
        provider_message_id=update.id,
        provider_status=update.status,
        error_code=error_code,
        error_reason=error_reason,
        detail=detail,
        raw=raw.decode("utf-8", errors="replace"),
    )


def inbound_event(message: InboundMessage, contact_name: str | None, metadata: Metadata,
                  tenant_id: str | None, raw: bytes, now: datetime) -> InboundEvent:
    """The event of one message a contact sent to one of our lines."""
    detail: dict[str, Any] = {"message_type": message.type,
                              "phone_number_id": metadata.phone_number_id,
                              "display_phone_number": metadata.display_phone_number}
    if contact_name:
        detail["contact_name"] = contact_name
    return InboundEvent(
        event_id=f"wa-in:{message.id}",
        channel=Channel.WHATSAPP,
        sender=message.sender,
        recipient=metadata.phone_number_id,
        body=message.body,
        received_at=occurred(message.timestamp, now),
        tenant_id=tenant_id,
        provider_message_id=message.id,
        raw=raw.decode("utf-8", errors="replace"),
        source="whatsapp",
        detail=detail,
    )
