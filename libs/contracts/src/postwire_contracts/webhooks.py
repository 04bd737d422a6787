"""Customer webhooks: the event types, the delivery id, and the gateway's commands to webhook-fanout.

The gateway manages endpoints and asks webhook-fanout (over ``webhook.command``) to replay deliveries or
send a test event; both sides derive a delivery's ``webhook-id`` the same way, so the gateway can
name the id of a delivery it has only asked for.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

import msgspec

EVENT_TYPES: tuple[str, ...] = (
    "email_sent", "email_delivered", "email_opened", "email_soft_bounce", "email_hard_bounce",
    "email_spam_complaint", "email_failed", "email_clicked", "sms_sent", "sms_delivered", "sms_failed",
    "sms_opt_out", "sms_opt_in", "whatsapp_sent", "whatsapp_delivered", "whatsapp_read",
    "whatsapp_failed", "whatsapp_inbound",
)
"""The customer webhook event types of the SPEC; an endpoint subscribes to some or to ``*`` (all)."""


def webhook_id(event_id: str, endpoint_id: str) -> str:
    """The ``webhook-id`` of delivering event ``event_id`` to ``endpoint_id``: the same on every
    retry and replay, so it is the receiver's idempotency key."""
    digest = hashlib.sha256(f"{event_id}:{endpoint_id}".encode()).digest()
    return "msg_" + base64.b32encode(digest[:20]).decode().lower()


class _Command(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    pass


class ReplayDelivery(_Command, tag="webhook.replay.v1", frozen=True, kw_only=True):
    """Gateway → webhook-fanout: deliver ``webhook_id`` to its endpoint again (same webhook-id)."""

    command_id: str
    tenant_id: str
    endpoint_id: str
    webhook_id: str
    requested_at: datetime


class ReplayFailed(_Command, tag="webhook.replay_failed.v1", frozen=True, kw_only=True):
    """Gateway → webhook-fanout: deliver again every delivery to ``endpoint_id`` that ended ``failed``
    at or after ``since``."""

    command_id: str
    tenant_id: str
    endpoint_id: str
    since: datetime
    requested_at: datetime


class SendTestEvent(_Command, tag="webhook.test.v1", frozen=True, kw_only=True):
    """Gateway → webhook-fanout: send an example ``event_type`` event (``event_id``) to ``endpoint_id``
    once, marked as a test."""

    command_id: str
    tenant_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    requested_at: datetime


WebhookCommand = ReplayDelivery | ReplayFailed | SendTestEvent

command_decoder: msgspec.json.Decoder[WebhookCommand] = msgspec.json.Decoder(WebhookCommand)
