"""Meta's webhook notifications: the signature, the envelope, and builders for the ones we emit.

``X-Hub-Signature-256: sha256=<hex>`` is HMAC-SHA256 over the raw request bytes keyed with the App
Secret; it is checked on those bytes before anything is parsed. The envelope is
``{"object": "whatsapp_business_account", "entry": [{"id", "changes": [{"field": "messages",
"value": {…}}]}]}``; ``value`` carries ``metadata`` and ``statuses[]``, or ``contacts[]`` and
``messages[]``, or ``errors[]``. Every field is optional when decoding: Meta adds fields without notice.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import msgspec

from .cloud_api import GraphError

SIGNATURE_HEADER = "X-Hub-Signature-256"
STATUS_VALUES: tuple[str, ...] = ("sent", "delivered", "read", "failed")


def sign(app_secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value of ``body``."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(app_secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time check of ``header`` against ``body``; an empty secret accepts nothing."""
    if not app_secret or not header:
        return False
    return hmac.compare_digest(sign(app_secret, body).encode(), header.strip().lower().encode())


Timestamp = str | int


class Metadata(msgspec.Struct, frozen=True, kw_only=True):
    phone_number_id: str = ""
    display_phone_number: str = ""


class Profile(msgspec.Struct, frozen=True, kw_only=True):
    name: str | None = None


class Contact(msgspec.Struct, frozen=True, kw_only=True):
    wa_id: str = ""
    profile: Profile | None = None


class Text(msgspec.Struct, frozen=True, kw_only=True):
    body: str = ""


class Button(msgspec.Struct, frozen=True, kw_only=True):
    text: str | None = None
    payload: str | None = None


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    id: str | None = None
    title: str | None = None


class Interactive(msgspec.Struct, frozen=True, kw_only=True):
    type: str | None = None
    button_reply: Reply | None = None
    list_reply: Reply | None = None


class Media(msgspec.Struct, frozen=True, kw_only=True):
    id: str | None = None
    caption: str | None = None
    mime_type: str | None = None


class Context(msgspec.Struct, frozen=True, kw_only=True):
    """Present when the contact replied to (or tapped a button of) one of our messages."""

    id: str | None = None
    """The wamid of the message replied to."""
    sender: str | None = msgspec.field(default=None, name="from")


class InboundMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One message a contact sent to the business number."""

    id: str
    sender: str = msgspec.field(default="", name="from")
    timestamp: Timestamp = "0"
    type: str = "unknown"
    context: Context | None = None
    text: Text | None = None
    button: Button | None = None
    interactive: Interactive | None = None
    image: Media | None = None
    document: Media | None = None
    video: Media | None = None
    audio: Media | None = None

    @property
    def body(self) -> str:
        """What the contact wrote or tapped (a caption for media); empty when there is no text."""
        if self.text is not None:
            return self.text.body
        if self.button is not None:
            return self.button.text or self.button.payload or ""
        if self.interactive is not None:
            reply = self.interactive.button_reply or self.interactive.list_reply
            return (reply.title or "") if reply else ""
        media = self.image or self.document or self.video or self.audio
        return (media.caption or "") if media else ""


class StatusUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """A status of one of our outbound messages."""

    id: str
    status: str
    timestamp: Timestamp = "0"
    recipient_id: str | None = None
    biz_opaque_callback_data: str | None = None
    conversation: dict[str, Any] | None = None
    pricing: dict[str, Any] | None = None
    errors: list[GraphError] = []


class Value(msgspec.Struct, frozen=True, kw_only=True):
    messaging_product: str | None = None
    metadata: Metadata = Metadata()
    contacts: list[Contact] = []
    messages: list[InboundMessage] = []
    statuses: list[StatusUpdate] = []
    errors: list[GraphError] = []


class Change(msgspec.Struct, frozen=True, kw_only=True):
    field: str = ""
    value: Value = Value()


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    id: str = ""
    changes: list[Change] = []


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    object: str = ""
    entry: list[Entry] = []


envelope_decoder = msgspec.json.Decoder(Envelope)
_raw_encoder = msgspec.json.Encoder()


def encode(value: msgspec.Struct | dict[str, Any]) -> bytes:
    """JSON bytes of a (part of a) notification, e.g. one status for the timeline's ``raw``."""
    return _raw_encoder.encode(value)


# Builders of the notifications the sandbox and the fake Graph API emit ---------------------------

def status_item(wamid: str, status: str, timestamp: int, recipient_id: str, *,
                callback_data: str | None = None,
                errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One ``statuses[]`` element as Meta sends it (``pricing`` and ``conversation`` on ``sent``)."""
    item: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(timestamp),
                            "recipient_id": recipient_id}
    if callback_data:
        item["biz_opaque_callback_data"] = callback_data
    if status in ("sent", "delivered"):
        item["conversation"] = {"id": f"conv-{recipient_id}", "origin": {"type": "utility"}}
        item["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "utility"}
    if errors:
        item["errors"] = errors
    return item


def envelope(phone_number_id: str, display_phone_number: str, *,
             statuses: list[dict[str, Any]] | None = None,
             contacts: list[dict[str, Any]] | None = None,
             messages: list[dict[str, Any]] | None = None,
             waba_id: str = "102290129340398") -> dict[str, Any]:
    """A ``whatsapp_business_account`` notification with one ``messages`` change."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": display_phone_number,
                     "phone_number_id": phone_number_id},
    }
    if contacts is not None:
        value["contacts"] = contacts
    if messages is not None:
        value["messages"] = messages
    if statuses is not None:
        value["statuses"] = statuses
    return {"object": "whatsapp_business_account",
            "entry": [{"id": waba_id, "changes": [{"field": "messages", "value": value}]}]}
