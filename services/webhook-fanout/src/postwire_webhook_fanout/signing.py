"""What a webhook delivery looks like on the wire: its stable id, the exact body and the signed headers.

Standard Webhooks v1: ``webhook-id`` (stable across retries, the receiver's idempotency key),
``webhook-timestamp`` (Unix seconds of this attempt) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` keyed with the secret's decoded bytes).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any

import msgspec
from standardwebhooks import Webhook

from postwire_contracts.messages import StatusChanged

_encoder = msgspec.json.Encoder()


def webhook_id(event_id: str, endpoint_id: str) -> str:
    """The delivery's id, derived from the event and the endpoint, so every retry carries the same."""
    digest = hashlib.sha256(f"{event_id}:{endpoint_id}".encode()).digest()
    return "msg_" + base64.b32encode(digest[:20]).decode().lower()


def payload(note: StatusChanged) -> bytes:
    """The exact bytes POSTed (and signed) for a notification."""
    occurred_at = _utc(note.occurred_at)
    body: dict[str, Any] = {
        "type": note.event_type,
        "timestamp": occurred_at,
        "data": {
            "messageId": note.message_id,
            "channel": note.channel.value,
            "status": note.status.value,
            "eventStatus": note.event_status.value,
            "recipient": note.recipient,
            "providerMessageId": note.provider_message_id,
            "errorCode": note.error_code,
            "errorReason": note.error_reason,
            "metadata": note.metadata,
            "occurredAt": occurred_at,
        },
    }
    return _encoder.encode(body)


def sign(secret: str, msg_id: str, at: datetime, body: bytes) -> str:
    """``v1,<signature>`` of ``body`` sent as ``msg_id`` at ``at`` (seconds precision, UTC)."""
    return Webhook(secret).sign(msg_id, _utc(at), body.decode())


def signed_headers(secret: str, msg_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """The headers of one attempt: id, this attempt's timestamp, signature and content type."""
    at = _utc(at).replace(microsecond=0)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": sign(secret, msg_id, at, body),
        "content-type": "application/json",
    }


def _utc(at: datetime) -> datetime:
    """``at`` as aware UTC (naive values are taken as UTC, as the signing library assumes)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
