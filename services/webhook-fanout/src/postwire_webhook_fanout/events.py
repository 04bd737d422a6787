"""What webhook-fanout delivers: a ``WebhookEvent`` built from a notification by its kind's builder.

Every notification kind that reaches ``webhook-fanout.notify`` has one payload builder here, keyed by its
tag; a builder turns the message into the exact body to POST (or None: nothing for customers). To
deliver a new kind (an opt-out notice, an inbound WhatsApp message), add its contract struct and one
``@builder`` function; delivery, signing, retries and records are the same for every kind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec

from postwire_contracts.messages import InboundReceived, OptOutChanged, StatusChanged, StatusChanges
from postwire_contracts.status import Channel, Status, webhook_event_type

log = logging.getLogger(__name__)

_encoder = msgspec.json.Encoder()


class WebhookEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One customer event, ready to deliver to any of the tenant's endpoints.

    ``body`` is the exact JSON POSTed and signed, identical on every attempt and replay. ``after``
    names the event types of the same message that should be attempted first (see ``ordering``).
    """

    event_id: str
    event_type: str
    tenant_id: str
    occurred_at: datetime
    body: msgspec.Raw
    live: bool = True
    message_id: str | None = None
    after: list[str] = []


M = TypeVar("M", bound=msgspec.Struct)


@dataclass(frozen=True)
class _Builder:
    decoder: msgspec.json.Decoder[Any]
    build: Callable[[Any], WebhookEvent | None]


BUILDERS: dict[str, _Builder] = {}
"""Payload builders by the tag (``kind``) of the notification they read."""


def builder(kind: type[M]) -> Callable[[Callable[[M], WebhookEvent | None]],
                                       Callable[[M], WebhookEvent | None]]:
    """Register ``fn`` as the payload builder of notification struct ``kind``."""

    def register(fn: Callable[[M], WebhookEvent | None]) -> Callable[[M], WebhookEvent | None]:
        tag = kind.__struct_config__.tag
        assert isinstance(tag, str), f"{kind.__name__} must be a tagged struct"
        BUILDERS[tag] = _Builder(msgspec.json.Decoder(kind), fn)
        return fn

    return register


class _Kind(msgspec.Struct):
    kind: str = ""


_kind_decoder = msgspec.json.Decoder(_Kind)


_BATCH_TAG = StatusChanges.__struct_config__.tag
_batch_decoder = msgspec.json.Decoder(StatusChanges)


class Notified(msgspec.Struct, frozen=True):
    """An event to deliver, with the traceparent its notification carried for it, if any."""

    event: WebhookEvent
    traceparent: str | None = None


def notified(raw: bytes) -> list[Notified]:
    """The events to deliver for a raw notification: none, one, or (a ``StatusChanges``) one per
    change that customers get, in the order the batch recorded them.

    Raises ``msgspec.DecodeError``/``ValidationError`` for a malformed message of a known kind.
    """
    kind = _kind_decoder.decode(raw).kind
    if kind == _BATCH_TAG:
        batch = _batch_decoder.decode(raw)
        return [Notified(event, batch.traceparents.get(change.event_id))
                for change in batch.changes if (event := status_changed(change)) is not None]
    event = _single(kind, raw)
    return [] if event is None else [Notified(event)]


def from_notification(raw: bytes) -> WebhookEvent | None:
    """The event to deliver for a raw notification of one event, or None when there is none for
    customers.

    Raises ``msgspec.DecodeError``/``ValidationError`` for a malformed message of a known kind.
    """
    return _single(_kind_decoder.decode(raw).kind, raw)


def _single(kind: str, raw: bytes) -> WebhookEvent | None:
    found = BUILDERS.get(kind)
    if found is None:
        log.info("notification kind without webhooks ignored", extra={"kind": kind})
        return None
    return found.build(found.decoder.decode(raw))


def utc(at: datetime) -> datetime:
    """``at`` as aware UTC (naive values are taken as UTC)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def encode_body(event_type: str, occurred_at: datetime, data: dict[str, Any]) -> msgspec.Raw:
    """The Standard Webhooks body: ``{"type", "timestamp", "data"}``."""
    return msgspec.Raw(_encoder.encode({"type": event_type, "timestamp": utc(occurred_at),
                                        "data": data}))


_FIRST: dict[Status, tuple[Status, ...]] = {
    Status.DELIVERED: (Status.SENT,),
    Status.READ: (Status.SENT, Status.DELIVERED),
}


def _earlier(note: StatusChanged) -> list[str]:
    """The event types that precede ``note``'s on the same message."""
    statuses = _FIRST.get(note.event_status, ())
    if note.event_status is Status.FAILED and note.provider_message_id:
        statuses = (Status.SENT,)  # accepted by the provider, then failed: SENT happened first
    types = (webhook_event_type(note.channel, s) for s in statuses)
    return [t for t in types if t is not None]


@builder(StatusChanged)
def status_changed(note: StatusChanged) -> WebhookEvent | None:
    """A status recorded on a message's timeline, for event types customers subscribe to."""
    if note.event_type is None:
        return None
    occurred_at = utc(note.occurred_at)
    data: dict[str, Any] = {
        "messageId": note.message_id,
        "channel": note.channel.value,
        "status": note.status.value,
        "eventStatus": note.event_status.value,
        "recipient": note.recipient,
        "providerMessageId": note.provider_message_id,
        "errorCode": note.error_code,
        "errorReason": note.error_reason,
        "detail": note.detail,
        "metadata": note.metadata,
        "live": note.live,
        "occurredAt": occurred_at,
    }
    return WebhookEvent(event_id=note.event_id, event_type=note.event_type,
                        tenant_id=note.tenant_id, occurred_at=occurred_at,
                        body=encode_body(note.event_type, occurred_at, data), live=note.live,
                        message_id=note.message_id, after=_earlier(note))


@builder(OptOutChanged)
def opt_out_changed(note: OptOutChanged) -> WebhookEvent | None:
    """A handset opted out of (``sms_opt_out``) or back in to (``sms_opt_in``) the tenant's messages."""
    occurred_at = utc(note.occurred_at)
    data: dict[str, Any] = {
        "channel": note.channel.value, "recipient": note.address, "optedOut": note.opted_out,
        "keyword": note.keyword, "sender": note.sender, "source": note.source,
        "occurredAt": occurred_at,
    }
    return WebhookEvent(event_id=note.event_id, event_type=note.event_type,
                        tenant_id=note.tenant_id, occurred_at=occurred_at,
                        body=encode_body(note.event_type, occurred_at, data))


@builder(InboundReceived)
def inbound_received(note: InboundReceived) -> WebhookEvent | None:
    """``whatsapp_inbound``: what a contact wrote to the tenant's line."""
    occurred_at = utc(note.occurred_at)
    data: dict[str, Any] = {
        "channel": note.channel.value, "from": note.sender, "to": note.recipient,
        "contactName": note.contact_name, "messageType": note.message_type, "body": note.body,
        "providerMessageId": note.provider_message_id, "optChange": note.opt_change,
        "occurredAt": occurred_at,
    }
    return WebhookEvent(event_id=note.event_id, event_type=note.event_type,
                        tenant_id=note.tenant_id, occurred_at=occurred_at,
                        body=encode_body(note.event_type, occurred_at, data))


def build(note: msgspec.Struct) -> WebhookEvent | None:
    """The event for an already decoded notification of a known kind (None: nothing to deliver)."""
    found = BUILDERS.get(str(type(note).__struct_config__.tag))
    return None if found is None else found.build(note)


_EXAMPLE_RECIPIENT = {Channel.EMAIL: "test@example.com", Channel.SMS: "+15005550006",
                      Channel.WHATSAPP: "15005550006"}


def example_event(event_id: str, tenant_id: str, event_type: str, at: datetime) -> WebhookEvent:
    """An example ``event_type`` event, shaped like the real ones and marked ``"test": true``."""
    prefix, _, suffix = event_type.partition("_")
    channel = Channel(prefix) if prefix in {c.value for c in Channel} else Channel.SMS
    status = suffix.upper() if suffix.upper() in Status.__members__ else None
    data: dict[str, Any] = {
        "messageId": f"test_{event_id}",
        "channel": channel.value,
        "status": status,
        "eventStatus": status,
        "recipient": _EXAMPLE_RECIPIENT[channel],
        "providerMessageId": None,
        "errorCode": None,
        "errorReason": None,
        "detail": {},
        "metadata": {},
        "live": False,
        "occurredAt": utc(at),
        "test": True,
    }
    return WebhookEvent(event_id=event_id, event_type=event_type, tenant_id=tenant_id,
                        occurred_at=utc(at), body=encode_body(event_type, at, data), live=False)
