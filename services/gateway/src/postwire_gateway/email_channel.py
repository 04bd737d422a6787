"""The email channel: direct content or a template, CSS inlined, one message per recipient.

A send names its content (``subject`` with ``html`` and/or ``text``) or a template (``templateId``,
optional ``templateVersion``, ``variables``), rendered here at accept time so the stored message and the
``SendEmail`` command carry what is delivered. HTML gets its CSS inlined and, when no text is given, a
derived text part. A live key may send only from a verified domain (or a subdomain of one).

Every envelope recipient (``to``, ``cc``, ``bcc``) becomes its own message, so each has its own status,
timeline, bounce and suppression; the answer lists them all (``messages``). SMTP submission
(``smtp_submission.py``) goes through ``prepare_email`` too.
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

import msgspec
from email_validator import EmailNotValidError, validate_email

from postwire_contracts import topology
from postwire_contracts.messages import SendEmail
from postwire_contracts.status import Channel
from postwire_platform.errors import ApiError
from postwire_platform.ids import new_id
from postwire_platform.mongo import Document
from postwire_templating import html_to_text, inline_css

from .accept import Prepared, base_document, with_command
from .auth import Principal
from .channels import ChannelSpec, common_view
from .context import Gateway
from .email_services import email_services
from .sms_models import MAX_METADATA_KEYS, MetadataKey, MetadataValue

MAX_RECIPIENTS = 50
MAX_VARIABLES = 200

Address = Annotated[str, msgspec.Meta(min_length=3, max_length=320)]
Recipients = Annotated[list[Address], msgspec.Meta(max_length=MAX_RECIPIENTS)]
Body = Annotated[str, msgspec.Meta(max_length=2_000_000)]

_HEADER_NAME = re.compile(r"^[!-9;-~]{1,100}$")
RESERVED_HEADERS = frozenset({
    "from", "to", "cc", "bcc", "subject", "date", "message-id", "reply-to", "mime-version",
    "content-type", "content-transfer-encoding", "dkim-signature", "return-path", "sender",
    "received", "x-postwire-message-id",
})


class SendEmailRequest(msgspec.Struct, rename="camel", kw_only=True, frozen=True):
    """``POST /v1/emails/send``."""

    from_: Address = msgspec.field(name="from")
    to: Annotated[list[Address], msgspec.Meta(min_length=1, max_length=MAX_RECIPIENTS)]
    cc: Recipients = []
    bcc: Recipients = []
    subject: Annotated[str, msgspec.Meta(min_length=1, max_length=998)] | None = None
    html: Body | None = None
    text: Body | None = None
    template_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    template_version: Annotated[int, msgspec.Meta(ge=1)] | None = None
    variables: Annotated[dict[str, Any], msgspec.Meta(max_length=MAX_VARIABLES)] = {}
    reply_to: Address | None = None
    headers: Annotated[dict[Annotated[str, msgspec.Meta(min_length=1, max_length=100)],
                            Annotated[str, msgspec.Meta(max_length=1000)]],
                       msgspec.Meta(max_length=30)] = {}
    metadata: Annotated[dict[MetadataKey, MetadataValue],
                        msgspec.Meta(max_length=MAX_METADATA_KEYS)] = {}
    external_id: Annotated[str, msgspec.Meta(min_length=1, max_length=255)] | None = None
    track_opens: bool = True
    track_clicks: bool = True


def normalise_address(raw: str, *, field: str) -> str:
    """``raw`` (a bare address) normalised, or 422 ``invalid_email`` naming ``field``."""
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ApiError(422, "invalid_email", f"{field}: {exc}", field=field) from None


def normalise_mailbox(raw: str, *, field: str) -> tuple[str, str]:
    """``Name <address>`` or a bare address → (header value, normalised address)."""
    if "\r" in raw or "\n" in raw:
        raise ApiError(422, "invalid_email", f"{field}: line breaks are not allowed", field=field)
    name, address = email.utils.parseaddr(raw)
    if not address:
        raise ApiError(422, "invalid_email", f"{field}: {raw!r} is not an email address", field=field)
    normalised = normalise_address(address, field=field)
    return (email.utils.formataddr((name, normalised)) if name else normalised), normalised


def _one_line(value: str, field: str) -> str:
    if "\r" in value or "\n" in value:
        raise ApiError(422, "validation_error", f"{field}: line breaks are not allowed", field=field)
    return value


def check_headers(headers: dict[str, str]) -> dict[str, str]:
    """Custom headers: valid names, no line breaks (header injection), none we set ourselves."""
    for name, value in headers.items():
        if not _HEADER_NAME.match(name):
            raise ApiError(422, "validation_error", f"headers: {name!r} is not a header name",
                           field="headers")
        if name.lower() in RESERVED_HEADERS:
            raise ApiError(422, "validation_error",
                           f"headers: {name} is set by Postwire; use the request's own field",
                           field="headers")
        _one_line(value, "headers")
    return dict(headers)


@dataclass(frozen=True)
class EmailDraft:
    """A validated email before it becomes messages: REST sends and SMTP submissions both make one."""

    sender: str
    sender_address: str
    to: list[str]
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    subject: str = ""
    html: str | None = None
    text: str | None = None
    reply_to: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    external_id: str | None = None
    template_id: str | None = None
    template_version: int | None = None
    track_opens: bool = True
    track_clicks: bool = True
    source: str = "api"

    @property
    def sender_domain(self) -> str:
        return self.sender_address.rsplit("@", 1)[-1]

    def envelope(self) -> list[tuple[str, str]]:
        """(address, kind) for every distinct recipient, in to, cc, bcc order."""
        seen: set[str] = set()
        out: list[tuple[str, str]] = []
        for kind, addresses in (("to", self.to), ("cc", self.cc), ("bcc", self.bcc)):
            for address in addresses:
                if address.lower() not in seen:
                    seen.add(address.lower())
                    out.append((address, kind))
        return out


def finish_content(html: str | None, text: str | None) -> tuple[str | None, str | None]:
    """HTML with its CSS inlined, and a text part derived from it when none was given."""
    if html is not None:
        try:
            html = inline_css(html)
        except ValueError as exc:
            raise ApiError(422, "validation_error", f"html: {exc}", field="html") from None
        if text is None:
            text = html_to_text(html)
    return html, text


async def prepare_email(gateway: Gateway, principal: Principal, draft: EmailDraft,
                        now: datetime) -> list[Prepared]:
    """Check the sending domain (live keys) and make one message per envelope recipient."""
    if principal.live:
        await email_services(gateway).domains.require(principal.tenant_id, draft.sender_domain)
    recipients = draft.envelope()
    if len(recipients) > MAX_RECIPIENTS:
        raise ApiError(422, "validation_error",
                       f"at most {MAX_RECIPIENTS} recipients in to, cc and bcc together", field="to")
    ids = [new_id() for _ in recipients]
    group = ids[0]
    prepared = []
    for message_id, (address, kind) in zip(ids, recipients, strict=True):
        doc = base_document(message_id=message_id, tenant_id=principal.tenant_id,
                            live=principal.live, channel=Channel.EMAIL.value, to=address,
                            metadata=draft.metadata, external_id=draft.external_id,
                            accepted_at=now)
        doc.update(from_address=draft.sender, subject=draft.subject, reply_to=draft.reply_to,
                   recipient_type=kind, group_id=group, template_id=draft.template_id,
                   template_version=draft.template_version, track_opens=draft.track_opens,
                   track_clicks=draft.track_clicks, submitted_via=draft.source)
        command = SendEmail(
            message_id=message_id, tenant_id=principal.tenant_id, live=principal.live,
            from_address=draft.sender, to=[address], subject=draft.subject, html=draft.html,
            text=draft.text, reply_to=draft.reply_to, headers=dict(draft.headers),
            metadata=dict(draft.metadata), external_id=draft.external_id, accepted_at=now,
            display_to=list(draft.to), cc=list(draft.cc), template_id=draft.template_id,
            template_version=draft.template_version, track_opens=draft.track_opens,
            track_clicks=draft.track_clicks)
        prepared.append(Prepared(with_command(doc, command), command, topology.SEND_EMAIL))
    return prepared


class EmailChannel(ChannelSpec):
    channel = Channel.EMAIL
    path = "emails"
    noun = "email"
    request_type = SendEmailRequest
    search_fields = ("to", "subject", "external_id")

    async def draft(self, gateway: Gateway, principal: Principal, request: SendEmailRequest) -> EmailDraft:
        """Validate the request and render its template: everything short of the messages."""
        sender, sender_address = normalise_mailbox(request.from_, field="from")
        to = [normalise_address(a, field="to") for a in request.to]
        cc = [normalise_address(a, field="cc") for a in request.cc]
        bcc = [normalise_address(a, field="bcc") for a in request.bcc]
        reply_to = normalise_mailbox(request.reply_to, field="replyTo")[0] if request.reply_to else None
        headers = check_headers(request.headers)
        if request.template_id is not None:
            for name in ("subject", "html", "text"):
                if getattr(request, name) is not None:
                    raise ApiError(422, "validation_error",
                                   f"{name} comes from the template; do not send it with templateId",
                                   field=name)
            rendered = await email_services(gateway).templates.for_send(
                principal.tenant_id, "email", request.template_id, request.template_version,
                request.variables)
            subject, html, text = rendered.subject or "", rendered.html, rendered.text
            version: int | None = rendered.version
        else:
            if request.template_version is not None or request.variables:
                field = "templateVersion" if request.template_version is not None else "variables"
                raise ApiError(422, "validation_error", f"{field} needs templateId", field=field)
            if request.subject is None:
                raise ApiError(422, "validation_error", "subject is required", field="subject")
            if request.html is None and request.text is None:
                raise ApiError(422, "validation_error", "html or text is required", field="html")
            subject, version = request.subject, None
            html, text = finish_content(request.html, request.text)
        return EmailDraft(
            sender=sender, sender_address=sender_address, to=to, cc=cc, bcc=bcc,
            subject=_one_line(subject, "subject"), html=html, text=text, reply_to=reply_to,
            headers=headers, metadata=dict(request.metadata), external_id=request.external_id,
            template_id=request.template_id, template_version=version,
            track_opens=request.track_opens, track_clicks=request.track_clicks)

    async def prepare_all(self, gateway: Gateway, principal: Principal, request: Any,
                          now: datetime) -> list[Prepared]:
        assert isinstance(request, SendEmailRequest)
        return await prepare_email(gateway, principal, await self.draft(gateway, principal, request),
                                   now)

    async def prepare(self, gateway: Gateway, principal: Principal, request: Any,
                      message_id: str, now: datetime) -> Prepared:
        """The single message of a one-recipient request (the send path uses ``prepare_all``)."""
        messages = await self.prepare_all(gateway, principal, request, now)
        if len(messages) != 1:
            raise ApiError(422, "validation_error", "this request makes several messages", field="to")
        return messages[0]

    def view(self, doc: Document) -> dict[str, Any]:
        return {**common_view(doc), "from": doc.get("from_address"), "subject": doc.get("subject"),
                "replyTo": doc.get("reply_to"), "recipientType": doc.get("recipient_type", "to"),
                "groupId": doc.get("group_id"), "templateId": doc.get("template_id"),
                "templateVersion": doc.get("template_version"),
                "trackOpens": doc.get("track_opens", False),
                "trackClicks": doc.get("track_clicks", False),
                "submittedVia": doc.get("submitted_via", "api")}

    def accepted_views(self, docs: list[Document]) -> dict[str, Any]:
        """The first message, plus every message the request made (one per recipient)."""
        return {**self.accepted_view(docs[0]),
                "messages": [{"id": d["_id"], "to": d["to"], "recipientType": d.get("recipient_type"),
                              "status": d["status"]} for d in docs]}
