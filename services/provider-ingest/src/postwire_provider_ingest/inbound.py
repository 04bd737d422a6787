"""The inbound MO JSON of ``POST /v1/webhooks/sms/inbound-opt-out`` and its ``InboundEvent``.

``{"from": "+447700900123", "to": "Postwire", "text": "STOP", "id": "<carrier's MO id>",
"receivedAt": "…"}``; Twilio-style names (``From``, ``To``, ``Body``, ``MessageSid``) and ``msisdn``,
``body``, ``message`` are read too, unknown fields ignored.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from postwire_contracts.messages import InboundEvent
from postwire_contracts.status import Channel
from postwire_platform.errors import ApiError
from postwire_platform.ids import new_id

from .dlr import parse_date


class InboundBody(msgspec.Struct, frozen=True, kw_only=True):
    sender: str | None = msgspec.field(default=None, name="from")
    sender_twilio: str | None = msgspec.field(default=None, name="From")
    msisdn: str | None = None
    to: str | None = None
    to_twilio: str | None = msgspec.field(default=None, name="To")
    text: str | None = None
    body: str | None = None
    body_twilio: str | None = msgspec.field(default=None, name="Body")
    message: str | None = None
    id: str | int | None = None
    sid: str | None = msgspec.field(default=None, name="MessageSid")
    received_at: str | None = msgspec.field(default=None, name="receivedAt")


_decoder = msgspec.json.Decoder(InboundBody)


def decode_inbound(raw: bytes, now: datetime) -> InboundEvent:
    """The event of one inbound message; 400/422 in the SPEC's format when unreadable."""
    try:
        body = _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise ApiError(422, "invalid_inbound", f"the inbound message is malformed: {exc}") from None
    except msgspec.DecodeError:
        raise ApiError(400, "invalid_json", "the request body is not valid JSON") from None
    sender = body.sender or body.sender_twilio or body.msisdn
    text = next((t for t in (body.text, body.body, body.body_twilio, body.message)
                 if t is not None), None)
    if not sender:
        raise ApiError(422, "invalid_inbound", "the sender (from) is missing", field="from")
    if text is None:
        raise ApiError(422, "invalid_inbound", "the text is missing", field="text")
    carrier_id = str(body.id) if body.id not in (None, "") else body.sid
    return InboundEvent(
        event_id=f"mo:http:{carrier_id}" if carrier_id else f"mo:http:{new_id()}",
        channel=Channel.SMS, sender=sender, recipient=body.to or body.to_twilio or "",
        body=text, received_at=parse_date(body.received_at) or now,
        provider_message_id=carrier_id, raw=raw.decode("utf-8", errors="replace"),
        source="inbound")
