"""The ``messages`` document of an SMS (docs/architecture.md) and the ``SendSms`` built from it."""

from __future__ import annotations

from datetime import datetime

import msgspec

from postwire_contracts.messages import SendSms
from postwire_contracts.status import Channel, Status
from postwire_platform.mongo import Document

from .auth import Principal
from .sms_models import SendSmsRequest

SOURCE = "gateway"


def new_sms_document(message_id: str, principal: Principal, request: SendSmsRequest, to: str,
                     accepted_at: datetime) -> Document:
    """A QUEUED SMS with its first timeline entry, not yet published."""
    return {
        "_id": message_id,
        "tenant_id": principal.tenant_id,
        "channel": Channel.SMS.value,
        "live": principal.live,
        "status": Status.QUEUED.value,
        "to": to,
        "body": request.body,
        "sender_id": request.sender_id,
        "flow": request.flow,
        "metadata": dict(request.metadata),
        "external_id": request.external_id,
        "accepted_at": accepted_at,
        "updated_at": accepted_at,
        "sent_at": None,
        "delivered_at": None,
        "failed_at": None,
        "provider_message_id": None,
        "error_code": None,
        "error_reason": None,
        "published": False,
        "timeline": [queued_entry(message_id, accepted_at)],
    }


def queued_entry(message_id: str, accepted_at: datetime) -> Document:
    """The timeline entry recording the gateway's acceptance."""
    return {
        "event_id": f"{message_id}:queued",
        "status": Status.QUEUED.value,
        "occurred_at": accepted_at,
        "recorded_at": accepted_at,
        "source": SOURCE,
        "provider_message_id": None,
        "provider_status": None,
        "error_code": None,
        "error_reason": None,
        "detail": {},
        "raw": None,
    }


def send_command(doc: Document) -> SendSms:
    """The command the sms-dispatcher consumes, rebuilt from a stored document.

    Raises ``msgspec.ValidationError`` when the document lacks a field or holds a wrong type, so a
    damaged document is never published.
    """
    return msgspec.convert({
        "message_id": doc.get("_id"),
        "tenant_id": doc.get("tenant_id"),
        "live": doc.get("live", False),
        "to": doc.get("to"),
        "body": doc.get("body"),
        "sender_id": doc.get("sender_id"),
        "flow": doc.get("flow") or "STANDARD",
        "metadata": doc.get("metadata") or {},
        "external_id": doc.get("external_id"),
        "accepted_at": doc.get("accepted_at"),
    }, SendSms)
