"""The SMS channel: E.164 recipients, approved sender ids, the OTP flow."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from postwire_contracts import topology
from postwire_contracts.messages import SendSms
from postwire_contracts.status import Channel
from postwire_platform.errors import ApiError
from postwire_platform.mongo import Document
from postwire_sms.segments import analyse

from .accept import Prepared, base_document, with_command
from .auth import Principal
from .channels import ChannelSpec, common_view
from .context import Gateway
from .phones import normalise_phone
from .sms_models import MAX_BODY_CHARS, SendSmsRequest
from .text_templates import text_of
from .views import iso


class SmsChannel(ChannelSpec):
    channel = Channel.SMS
    path = "sms"
    noun = "SMS"
    request_type = SendSmsRequest
    search_fields = ("to", "body", "external_id")
    filters = (("flow", ("OTP", "STANDARD"), "flow"),)

    async def prepare(self, gateway: Gateway, principal: Principal, request: Any,
                      message_id: str, now: datetime) -> Prepared:
        assert isinstance(request, SendSmsRequest)
        to = normalise_phone(request.to, field="to")
        await gateway.senders.require_approved(principal.tenant_id, request.sender_id)
        body = await text_of(gateway, principal, "sms", direct=request.body, direct_field="body",
                             template_id=request.template_id,
                             template_version=request.template_version, variables=request.variables)
        assert body is not None
        if len(body) > MAX_BODY_CHARS:
            raise ApiError(422, "validation_error",
                           f"body: the text is {len(body)} characters; at most {MAX_BODY_CHARS}",
                           field="body")
        doc = base_document(message_id=message_id, tenant_id=principal.tenant_id, live=principal.live,
                            channel=Channel.SMS.value, to=to, metadata=request.metadata,
                            external_id=request.external_id, accepted_at=now)
        segments = analyse(body)
        limit = gateway.settings.sms_max_segments
        if segments.count > limit:
            raise ApiError(422, "too_many_segments",
                           f"the body needs {segments.count} {segments.encoding} segments; "
                           f"at most {limit} are allowed", field="body")
        expires_at = expiry(request, now, gateway.settings.otp_ttl_seconds)
        doc.update(body=body, template_id=request.template_id, sender_id=request.sender_id, flow=request.flow,
                   segments=segments.count, encoding=segments.encoding, expires_at=expires_at)
        command = SendSms(message_id=message_id, tenant_id=principal.tenant_id, live=principal.live,
                          to=to, body=body, sender_id=request.sender_id, flow=request.flow,
                          metadata=dict(request.metadata), external_id=request.external_id,
                          accepted_at=now, expires_at=expires_at)
        return Prepared(with_command(doc, command), command, topology.sms_send_key(request.flow))

    def view(self, doc: Document) -> dict[str, Any]:
        return {**common_view(doc), "senderId": doc.get("sender_id"), "body": doc.get("body"),
                "flow": doc.get("flow"), "segments": doc.get("segments"),
                "encoding": doc.get("encoding"), "expiresAt": iso(doc.get("expires_at"))}

    def accepted_view(self, doc: Document) -> dict[str, Any]:
        view = self.view(doc)
        view.pop("body")
        return view


def expiry(request: SendSmsRequest, now: datetime, otp_ttl: float) -> datetime | None:
    """``expiresAt`` as given (it must lie ahead), else ``otp_ttl`` seconds from now for an OTP."""
    if request.expires_at is not None:
        at = request.expires_at
        if at.tzinfo is None:
            raise ApiError(422, "invalid_expires_at", "expiresAt needs a time zone",
                           field="expiresAt")
        if at <= now:
            raise ApiError(422, "invalid_expires_at", "expiresAt is in the past", field="expiresAt")
        return at
    if request.flow == "OTP":
        return now + timedelta(seconds=otp_ttl)
    return None
