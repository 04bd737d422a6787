"""The WhatsApp channel: a text or an approved template to an E.164 number.

The recipient is stored as E.164 (``+15551234567``); the dispatcher sends to its wa_id (the digits),
which is also how opt-outs and conversations name the contact. With ``WHATSAPP_CLOUD_API_ENABLED`` off
every send is 503 ``whatsapp_disabled`` and nothing is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from postwire_contracts import topology
from postwire_contracts.messages import SendWhatsApp, WhatsAppTemplate
from postwire_contracts.status import Channel
from postwire_platform.errors import ApiError
from postwire_platform.mongo import Document

from .accept import Prepared, base_document, with_command
from .auth import Principal
from .channels import ChannelSpec, common_view
from .context import Gateway
from .phones import normalise_phone
from .sms_models import MAX_METADATA_KEYS, MetadataKey, MetadataValue
from .text_templates import text_of


class TemplateRequest(msgspec.Struct, rename="camel", kw_only=True, frozen=True):
    """An approved template: Meta's names are lower-case letters, digits and underscores; the
    language is a code such as ``en`` or ``en_US``; parameters fill ``{{1}}``… of its body."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=512, pattern=r"^[a-z0-9_]+$")]
    language: Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$")]
    body_parameters: Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]],
                               msgspec.Meta(max_length=50)] = []


class SendWhatsAppRequest(msgspec.Struct, rename="camel", kw_only=True, frozen=True):
    """``POST /v1/whatsapp/send``: exactly one of ``text`` and ``template``."""

    to: str
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)] | None = None
    template: TemplateRequest | None = None
    template_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    """A stored WhatsApp text template of ours (not a Meta template): renders ``text``."""
    template_version: Annotated[int, msgspec.Meta(ge=1)] | None = None
    variables: Annotated[dict[str, Any], msgspec.Meta(max_length=200)] = {}
    metadata: Annotated[dict[MetadataKey, MetadataValue],
                        msgspec.Meta(max_length=MAX_METADATA_KEYS)] = {}
    external_id: Annotated[str, msgspec.Meta(min_length=1, max_length=255)] | None = None


class WhatsAppChannel(ChannelSpec):
    channel = Channel.WHATSAPP
    path = "whatsapp"
    noun = "WhatsApp message"
    request_type = SendWhatsAppRequest
    search_fields = ("to", "text", "external_id")

    async def prepare(self, gateway: Gateway, principal: Principal, request: Any,
                      message_id: str, now: datetime) -> Prepared:
        assert isinstance(request, SendWhatsAppRequest)
        if not gateway.settings.whatsapp_cloud_api_enabled:
            raise ApiError(503, "whatsapp_disabled",
                           "WhatsApp sending is switched off on this installation "
                           "(WHATSAPP_CLOUD_API_ENABLED)")
        to = normalise_phone(request.to, field="to")
        text = await text_of(gateway, principal, "whatsapp", direct=request.text, direct_field="text",
                             template_id=request.template_id,
                             template_version=request.template_version, variables=request.variables,
                             required=False)
        if text is not None and len(text) > 4096:
            raise ApiError(422, "validation_error", "text: at most 4096 characters", field="text")
        if (text is None) == (request.template is None):
            raise ApiError(422, "validation_error", "exactly one of text and template is required",
                           field="text")
        template = None
        if request.template is not None:
            template = WhatsAppTemplate(name=request.template.name,
                                        language=request.template.language,
                                        body_parameters=list(request.template.body_parameters))
        doc = base_document(message_id=message_id, tenant_id=principal.tenant_id, live=principal.live,
                            channel=Channel.WHATSAPP.value, to=to, metadata=request.metadata,
                            external_id=request.external_id, accepted_at=now)
        doc.update(text=text, template_id=request.template_id,
                   template=msgspec.to_builtins(template) if template is not None else None)
        command = SendWhatsApp(message_id=message_id, tenant_id=principal.tenant_id,
                               live=principal.live, to=to, text=text, template=template,
                               metadata=dict(request.metadata), external_id=request.external_id,
                               accepted_at=now)
        return Prepared(with_command(doc, command), command, topology.SEND_WHATSAPP)

    def view(self, doc: Document) -> dict[str, Any]:
        template = doc.get("template")
        return {**common_view(doc), "text": doc.get("text"),
                "template": ({"name": template.get("name"), "language": template.get("language"),
                              "bodyParameters": template.get("body_parameters", [])}
                             if template else None)}
