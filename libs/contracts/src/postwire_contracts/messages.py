"""Versioned broker messages.

Schema evolution follows msgspec's rules: a new field gets a default, a field's type never changes, a
breaking change is a new struct with a new tag (``….v2``). Every struct carries its tag in ``kind``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from .status import Channel, Status

Flow = Literal["OTP", "STANDARD"]


class _Message(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    pass


class SendSms(_Message, tag="send.sms.v1", frozen=True, kw_only=True):
    """Gateway → sms-dispatcher: deliver one SMS that the gateway has stored as QUEUED."""

    message_id: str
    tenant_id: str
    live: bool
    to: str
    body: str
    sender_id: str
    flow: Flow = "STANDARD"
    metadata: dict[str, str] = {}
    external_id: str | None = None
    accepted_at: datetime
    expires_at: datetime | None = None
    attempt: int = 0


class SendEmail(_Message, tag="send.email.v1", frozen=True, kw_only=True):
    """Gateway → email-dispatcher: deliver one email stored as QUEUED."""

    message_id: str
    tenant_id: str
    live: bool
    from_address: str
    to: list[str]
    subject: str
    html: str | None = None
    text: str | None = None
    reply_to: str | None = None
    headers: dict[str, str] = {}
    metadata: dict[str, str] = {}
    external_id: str | None = None
    accepted_at: datetime
    attempt: int = 0
    # Added with issue 4 (defaults keep older commands valid). ``to`` holds the envelope recipients
    # (the gateway sends one per message); the headers show ``display_to``/``cc`` when given.
    display_to: list[str] = []
    cc: list[str] = []
    template_id: str | None = None
    template_version: int | None = None
    track_opens: bool = False
    track_clicks: bool = False


class WhatsAppTemplate(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    language: str
    body_parameters: list[str] = []


class SendWhatsApp(_Message, tag="send.whatsapp.v1", frozen=True, kw_only=True):
    """Gateway → whatsapp-dispatcher: deliver one text or template message stored as QUEUED."""

    message_id: str
    tenant_id: str
    live: bool
    to: str
    text: str | None = None
    template: WhatsAppTemplate | None = None
    metadata: dict[str, str] = {}
    external_id: str | None = None
    accepted_at: datetime
    attempt: int = 0


class StatusEvent(_Message, tag="event.status.v1", frozen=True, kw_only=True):
    """Something happened to an outbound message. Published by dispatchers and provider-ingest.

    A callback may know only the provider's id (``provider_message_id``); reporting resolves it to our
    message, or records the event as unmatched. ``event_id`` is deterministic where the source allows,
    so a redelivered callback is recognised as the same event.
    """

    event_id: str
    channel: Channel
    status: Status
    occurred_at: datetime
    source: str
    message_id: str | None = None
    tenant_id: str | None = None
    provider_message_id: str | None = None
    provider_status: str | None = None
    error_code: str | None = None
    error_reason: str | None = None
    detail: dict[str, Any] = {}
    raw: str | None = None
    event_type: str | None = None
    """The customer webhook type when the status alone does not say it (``email_hard_bounce``,
    ``email_opened``, ``email_spam_complaint``, …); None: derived from channel and status."""


class StatusEvents(_Message, tag="event.status.batch.v1", frozen=True, kw_only=True):
    """Status events published together, in order, in one AMQP message (under the same
    ``event.status.<channel>`` key as a single ``StatusEvent``): the SMS, email and WhatsApp
    dispatchers send a message's PROCESSING with its outcome this way. Reporting records each as it
    would alone."""

    events: list[StatusEvent]


class InboundEvent(_Message, tag="event.inbound.v1", frozen=True, kw_only=True):
    """A mobile-originated message (an SMS MO or a WhatsApp message) reached one of our lines."""

    event_id: str
    channel: Channel
    sender: str
    recipient: str
    body: str
    received_at: datetime
    tenant_id: str | None = None
    provider_message_id: str | None = None
    raw: str | None = None
    source: str | None = None
    """Where it came in: ``"inbound"`` (HTTP MO webhook), ``"smpp"``, ``"whatsapp"``."""
    detail: dict[str, Any] = {}
    """Channel specifics, e.g. WhatsApp's ``contact_name``, ``message_type``, ``phone_number_id``."""


class StatusChanged(_Message, tag="notify.status.v1", frozen=True, kw_only=True):
    """Reporting → webhook-fanout and the live stream: an event was recorded on a message's timeline.

    ``status`` is the message's status after the event (which never moves backwards);
    ``event_status`` is what the event itself reported.
    """

    event_id: str
    event_type: str | None
    tenant_id: str
    message_id: str
    channel: Channel
    status: Status
    event_status: Status
    occurred_at: datetime
    recipient: str
    live: bool = True
    provider_message_id: str | None = None
    error_code: str | None = None
    error_reason: str | None = None
    metadata: dict[str, str] = {}
    detail: dict[str, Any] = {}


class StatusChanges(_Message, tag="notify.status.batch.v1", frozen=True, kw_only=True):
    """Reporting → webhook-fanout and the live stream: the status changes one recorded batch made on
    one channel's messages, in the order they were recorded, in one AMQP message (published under
    the same ``notify.status.<channel>`` key as a single ``StatusChanged``; a batch of one is sent as
    that). Consumers handle each change exactly as they would a ``StatusChanged`` of its own.

    ``traceparents``: by ``event_id``, the W3C traceparent of the change's ``reporting notify`` span
    in its message's own trace, for a consumer to continue that trace (a single ``StatusChanged``
    carries it in the AMQP headers instead); empty when not tracing.
    """

    changes: list[StatusChanged]
    traceparents: dict[str, str] = {}


class InboundReceived(_Message, tag="notify.inbound.v1", frozen=True, kw_only=True):
    """provider-ingest → webhook-fanout: an inbound message was kept on a tenant's conversation.

    ``event_type`` is the customer webhook type (``whatsapp_inbound``); ``sender`` the contact (a wa_id
    for WhatsApp), ``recipient`` our line (the Meta ``phone_number_id``). ``opt_change`` is
    ``"opted_out"``/``"opted_in"`` when the message was an opt-out or opt-in keyword that took effect.
    """

    event_id: str
    event_type: str
    tenant_id: str
    channel: Channel
    sender: str
    recipient: str
    body: str
    occurred_at: datetime
    message_type: str = "text"
    contact_name: str | None = None
    provider_message_id: str | None = None
    opt_change: str | None = None
    detail: dict[str, Any] = {}


class OptOutChanged(_Message, tag="notify.optout.v1", frozen=True, kw_only=True):
    """provider-ingest → webhook-fanout: a handset opted out of (or back in to) a tenant's messages.

    ``event_type`` is the customer webhook type, ``sms_opt_out`` or ``sms_opt_in``; ``address`` the
    handset (E.164), ``sender`` the number or sender id the inbound message was sent to.
    """

    event_id: str
    event_type: str
    tenant_id: str
    channel: Channel
    address: str
    opted_out: bool
    keyword: str
    source: str
    occurred_at: datetime
    sender: str | None = None
    provider_message_id: str | None = None


SendCommand = SendSms | SendEmail | SendWhatsApp
Event = StatusEvent | InboundEvent

send_decoder: msgspec.json.Decoder[SendCommand] = msgspec.json.Decoder(SendCommand)
event_decoder: msgspec.json.Decoder[Event] = msgspec.json.Decoder(Event)
EventMessage = StatusEvent | StatusEvents | InboundEvent
"""What ``reporting.events`` carries: one event, or status events published together."""
event_message_decoder: msgspec.json.Decoder[EventMessage] = msgspec.json.Decoder(EventMessage)
notification_decoder: msgspec.json.Decoder[StatusChanged] = msgspec.json.Decoder(StatusChanged)
StatusNotification = StatusChanged | StatusChanges
"""What ``notify.status.<channel>`` carries: one status change, or a recorded batch's."""
status_notification_decoder: msgspec.json.Decoder[StatusNotification] = msgspec.json.Decoder(
    StatusNotification)
Notification = StatusChanged | StatusChanges | InboundReceived | OptOutChanged
any_notification_decoder: msgspec.json.Decoder[Notification] = msgspec.json.Decoder(Notification)
encoder = msgspec.json.Encoder()
