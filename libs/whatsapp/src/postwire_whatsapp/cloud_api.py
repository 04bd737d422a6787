"""Sending through the Graph API: request bodies, answers, errors and what each error code means.

``POST {base}/{version}/{phone_number_id}/messages`` with ``Authorization: Bearer <token>``. Our message
id travels in ``biz_opaque_callback_data`` and comes back on every status webhook of the message.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec

DEFAULT_GRAPH_URL = "https://graph.facebook.com"
DEFAULT_GRAPH_VERSION = "v23.0"
CALLBACK_DATA_MAX_BYTES = 512


def messages_path(version: str, phone_number_id: str) -> str:
    """``/v23.0/106540352242922/messages``."""
    return f"/{version.strip('/')}/{phone_number_id}/messages"


def text_body(to: str, text: str, *, callback_data: str | None = None,
              preview_url: bool = False) -> dict[str, Any]:
    """A free-form text message (only inside the 24-hour customer service window)."""
    body: dict[str, Any] = {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
        "type": "text", "text": {"preview_url": preview_url, "body": text},
    }
    return _with_callback(body, callback_data)


def template_body(to: str, name: str, language: str, body_parameters: list[str], *,
                  callback_data: str | None = None) -> dict[str, Any]:
    """An approved template; ``body_parameters`` fill ``{{1}}``, ``{{2}}``… of its body in order."""
    template: dict[str, Any] = {"name": name, "language": {"code": language}}
    if body_parameters:
        template["components"] = [{"type": "body", "parameters": [
            {"type": "text", "text": value} for value in body_parameters]}]
    body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual",
                            "to": to, "type": "template", "template": template}
    return _with_callback(body, callback_data)


def _with_callback(body: dict[str, Any], callback_data: str | None) -> dict[str, Any]:
    if callback_data:
        if len(callback_data.encode()) > CALLBACK_DATA_MAX_BYTES:
            raise ValueError("biz_opaque_callback_data is limited to 512 bytes")
        body["biz_opaque_callback_data"] = callback_data
    return body


class SentContact(msgspec.Struct, frozen=True, kw_only=True):
    input: str = ""
    wa_id: str = ""


class SentMessage(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    message_status: str | None = None


class SendAccepted(msgspec.Struct, frozen=True, kw_only=True):
    """The 200 answer: ``{"messaging_product", "contacts": [{input, wa_id}], "messages": [{id}]}``."""

    messages: list[SentMessage]
    contacts: list[SentContact] = []
    messaging_product: str = "whatsapp"


class ErrorData(msgspec.Struct, frozen=True, kw_only=True):
    details: str | None = None
    messaging_product: str | None = None


class GraphError(msgspec.Struct, frozen=True, kw_only=True):
    """Meta's error object, in a send's answer (``{"error": …}``) or a failed status (``errors[]``)."""

    code: int
    message: str = ""
    title: str | None = None
    type: str | None = None
    error_subcode: int | None = None
    error_data: ErrorData | None = None
    fbtrace_id: str | None = None

    @property
    def reason(self) -> str:
        """A human sentence: the title or message, then Meta's details when they add something."""
        head = self.title or self.message or f"error {self.code}"
        details = self.error_data.details if self.error_data else None
        return f"{head}: {details}" if details and details != head else head


class ErrorAnswer(msgspec.Struct, frozen=True, kw_only=True):
    error: GraphError


accepted_decoder = msgspec.json.Decoder(SendAccepted)
error_decoder = msgspec.json.Decoder(ErrorAnswer)


class Handling(enum.Enum):
    """What to do about an error code (protocols.md §1)."""

    PERMANENT = "permanent"
    """End the message FAILED: resending will not help."""
    THROTTLE_NUMBER = "throttle_number"
    """The business number is over its throughput: back off the whole number, then retry."""
    THROTTLE_RECIPIENT = "throttle_recipient"
    """Too many messages to this recipient: delay this recipient only, then retry."""
    RETRY = "retry"
    """Meta had a temporary problem: retry later."""


TOKEN_EXPIRED = 190
OUTSIDE_WINDOW = 131047

_HANDLING: dict[int, Handling] = {
    130429: Handling.THROTTLE_NUMBER,   # throughput cap for the number
    131056: Handling.THROTTLE_RECIPIENT,  # pair rate limit (business number, recipient)
    80007: Handling.THROTTLE_NUMBER,    # WABA rate limit
    4: Handling.THROTTLE_NUMBER,        # application request limit
    1: Handling.RETRY,                  # unknown API error
    2: Handling.RETRY,                  # API service temporarily unavailable
    131000: Handling.RETRY,             # something went wrong
    131016: Handling.RETRY,             # service unavailable
    133004: Handling.RETRY,             # server temporarily unavailable
}

REASONS: dict[int, str] = {
    131047: "more than 24 hours since the recipient last wrote: only a template can be sent",
    131026: "undeliverable: not on WhatsApp, an old client, or terms not accepted",
    132001: "the template or its translation does not exist",
    190: "the access token expired or was revoked",
    131048: "spam rate limit: Meta is not delivering messages from this number for now",
    131049: "Meta chose not to deliver this message (ecosystem engagement)",
    130429: "the business number is over its throughput limit",
    131056: "too many messages to this recipient in a short time",
}


def handling(code: int) -> Handling:
    """How to treat Graph error ``code``; unknown codes are permanent (Meta refused the request)."""
    return _HANDLING.get(code, Handling.PERMANENT)
