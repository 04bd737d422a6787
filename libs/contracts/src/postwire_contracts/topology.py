"""Every exchange, routing key and queue name Postwire uses. No service spells one itself."""

from __future__ import annotations

from .status import Channel

EXCHANGE = "postwire"
"""The topic exchange every command and event goes through."""

DEAD_LETTER_EXCHANGE = "postwire.dead"
"""Direct exchange a queue's rejected (undecodable, exhausted) messages go to."""

RETRY_EXCHANGE = "postwire.retry"
"""Direct exchange feeding delay queues; their TTL dead-letters back to EXCHANGE."""

# Commands: gateway -> dispatchers
SEND_EMAIL = "send.email"
SEND_SMS = "send.sms"
SEND_WHATSAPP = "send.whatsapp"
SEND_SMS_OTP = "send.sms.otp"
"""OTPs travel in their own lane (queue ``sms-dispatcher.send.otp``), never behind bulk sends."""
SEND_KEYS: dict[Channel, str] = {
    Channel.EMAIL: SEND_EMAIL,
    Channel.SMS: SEND_SMS,
    Channel.WHATSAPP: SEND_WHATSAPP,
}

def sms_send_key(flow: str) -> str:
    """Routing key of a ``SendSms``: ``send.sms.otp`` for ``flow == "OTP"``, else ``send.sms``."""
    return SEND_SMS_OTP if flow == "OTP" else SEND_SMS


# Events: dispatchers and provider-ingest -> reporting
STATUS_PREFIX = "event.status"
INBOUND_PREFIX = "event.inbound"
EVENTS_PATTERN = "event.#"


def status_key(channel: Channel) -> str:
    """Routing key of a status event, e.g. ``event.status.sms``."""
    return f"{STATUS_PREFIX}.{channel.value}"


def inbound_key(channel: Channel) -> str:
    """Routing key of an inbound (mobile-originated) event."""
    return f"{INBOUND_PREFIX}.{channel.value}"


# Notifications: reporting (single writer) -> webhook-fanout, gateway live stream
NOTIFY_PREFIX = "notify.status"
NOTIFY_PATTERN = "notify.#"


def notify_key(channel: Channel) -> str:
    """Routing key of a recorded status change, e.g. ``notify.status.sms``."""
    return f"{NOTIFY_PREFIX}.{channel.value}"


NOTIFY_STATUS_PATTERN = f"{NOTIFY_PREFIX}.*"
"""Every channel's status changes (not the opt-outs under ``notify.optout``)."""

STREAM_QUEUE_PREFIX = "gateway.stream"
"""Each gateway replica's own exclusive, auto-deleted queue of status changes for the live stream."""


def stream_queue(replica: str) -> str:
    """The live-stream queue of one gateway replica (``gateway.stream.<replica id>``)."""
    return f"{STREAM_QUEUE_PREFIX}.{replica}"

NOTIFY_INBOUND_PREFIX = "notify.inbound"


def notify_inbound_key(channel: Channel) -> str:
    """Routing key of an inbound message kept on a conversation, e.g. ``notify.inbound.whatsapp``."""
    return f"{NOTIFY_INBOUND_PREFIX}.{channel.value}"


NOTIFY_OPTOUT_PREFIX = "notify.optout"


def optout_key(channel: Channel) -> str:
    """Routing key of an opt-out or opt-in (``OptOutChanged``), e.g. ``notify.optout.sms``."""
    return f"{NOTIFY_OPTOUT_PREFIX}.{channel.value}"


# Queues
EMAIL_SEND_QUEUE = "email-dispatcher.send"
SMS_SEND_QUEUE = "sms-dispatcher.send"
SMS_OTP_QUEUE = "sms-dispatcher.send.otp"
INGEST_INBOUND_QUEUE = "provider-ingest.inbound"
"""Inbound SMS (HTTP MO and SMPP deliver_sm) waiting for the opt-out keywords to be applied."""
WHATSAPP_SEND_QUEUE = "whatsapp-dispatcher.send"
WHATSAPP_INBOUND_QUEUE = "provider-ingest.inbound.whatsapp"
"""Inbound WhatsApp messages (``event.inbound.whatsapp``) waiting to be kept on their conversation."""
REPORTING_QUEUE = "reporting.events"
FANOUT_QUEUE = "webhook-fanout.notify"
FANOUT_DELIVERY_QUEUE = "webhook-fanout.deliver"
FANOUT_DELIVERY_KEY = "webhook.deliver"
FANOUT_COMMAND_QUEUE = "webhook-fanout.commands"
"""Gateway → webhook-fanout: replay and test-event commands (``postwire_contracts.webhooks``)."""
FANOUT_COMMAND_KEY = "webhook.command"


def dead_letter_queue(queue: str) -> str:
    """Where ``queue``'s dead letters park for an operator to inspect and replay."""
    return f"{queue}.dead"


def delay_queue(queue: str, seconds: float) -> str:
    """The delay queue holding ``queue``'s messages for ``seconds`` before they return."""
    millis = round(seconds * 1000)
    return f"{queue}.delay.{millis}ms"


def delay_key(queue: str, seconds: float) -> str:
    """Routing key on RETRY_EXCHANGE of the delay queue for ``queue`` and ``seconds``."""
    return delay_queue(queue, seconds)
