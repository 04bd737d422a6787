"""SMTP submission (RFC 6409) into the same pipeline as ``POST /v1/emails/send``.

aiosmtpd serves on the app's own event loop (not its threaded Controller), so the handler uses the
gateway's MongoDB client, authenticator and acceptor directly. STARTTLS is required before AUTH;
the password is an API key with ``send:email`` (the user name is free). Each envelope recipient becomes
its own message, exactly as with the REST send; the answer to DATA names the message ids.

Clear errors: 535 for a bad key, 550 5.7.1 for a suppressed recipient (at RCPT, so the others still
go), 553 for an unverified sending domain with a live key, 552 over the size limit, 451 when MongoDB or
RabbitMQ is down (the client retries), 554 for content the API would refuse.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import email.utils
import logging
import ssl
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from pymongo.errors import PyMongoError

from postwire_platform import tenancy
from postwire_platform.errors import ApiError
from postwire_platform.mongo import SUPPRESSIONS

from .auth import Principal
from .context import Gateway
from .email_channel import (
    EmailDraft,
    finish_content,
    normalise_address,
    normalise_mailbox,
    prepare_email,
)
from .email_services import EmailServices, email_services

log = logging.getLogger(__name__)

SCOPE = "send:email"
METADATA_PREFIX = "x-postwire-metadata-"
TRACK_OPENS = "x-postwire-track-opens"
TRACK_CLICKS = "x-postwire-track-clicks"
_DROPPED = frozenset({"from", "to", "cc", "bcc", "subject", "date", "message-id", "reply-to",
                      "mime-version", "content-type", "content-transfer-encoding", "received",
                      "return-path", "sender", "dkim-signature", "x-postwire-message-id"})


def _capture(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
             auth_data: Any) -> AuthResult:
    """aiosmtpd's authenticator is synchronous: it only hands the parsed credentials on."""
    return AuthResult(success=True, auth_data=auth_data)


class SubmissionHandler:
    """aiosmtpd handler: authenticates API keys and turns each DATA into accepted messages."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    # AUTH: the builtin mechanisms parse, we check the key asynchronously -------------------------
    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._check(await SMTP.auth_PLAIN(server, None, args))

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._check(await SMTP.auth_LOGIN(server, None, args))

    async def _check(self, parsed: AuthResult) -> AuthResult:
        if not parsed.success or not isinstance(parsed.auth_data, LoginPassword):
            return parsed
        key = parsed.auth_data.password.decode("utf-8", "replace")
        try:
            record = await tenancy.find_key(self._gateway.runtime.db, key)
        except PyMongoError:
            return AuthResult(success=False, handled=False,
                              message="454 4.7.0 Temporary authentication failure, try again")
        if record is None:
            return AuthResult(success=False, handled=False,
                              message="535 5.7.8 Authentication failed: unknown or revoked API key")
        if record["tenant"].get("status") == "suspended":
            return AuthResult(success=False, handled=False,
                              message="535 5.7.8 Authentication failed: the account is suspended")
        scopes = frozenset(record.get("scopes", ()))
        if SCOPE not in scopes:
            return AuthResult(success=False, handled=False,
                              message="535 5.7.8 Authentication failed: the API key lacks send:email")
        principal = Principal(tenant_id=record["tenant_id"], key_id=record["_id"],
                              mode=record.get("mode", "test"), scopes=scopes)
        return AuthResult(success=True, auth_data=principal)

    # envelope -------------------------------------------------------------------------------------
    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          mail_options: list[str]) -> str:
        principal = session.auth_data
        if not isinstance(principal, Principal):
            return "530 5.7.0 Authentication required"
        try:
            sender = normalise_address(address, field="from")
        except ApiError:
            return "553 5.1.7 The sender address is not valid"
        if principal.live:
            try:
                await self._services().domains.require(principal.tenant_id,
                                                       sender.rsplit("@", 1)[-1])
            except ApiError as exc:
                return _smtp_error(exc, default="553 5.7.1")
        envelope.mail_from = sender
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        principal = session.auth_data
        if not isinstance(principal, Principal):
            return "530 5.7.0 Authentication required"
        if len(envelope.rcpt_tos) >= 50:
            return "452 4.5.3 Too many recipients (at most 50 per message)"
        try:
            recipient = normalise_address(address, field="to")
        except ApiError:
            return "553 5.1.3 The recipient address is not valid"
        try:
            suppressed = await self._gateway.runtime.db[SUPPRESSIONS].find_one(
                {"tenant_id": principal.tenant_id, "email": recipient.lower()},
                projection=["reason"])
        except PyMongoError:
            return "451 4.3.0 Temporary failure, try again"
        if suppressed is not None:
            return (f"550 5.7.1 <{recipient}> is on this account's suppression list "
                    f"({suppressed.get('reason', 'manual')})")
        envelope.rcpt_tos.append(recipient)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        principal = session.auth_data
        if not isinstance(principal, Principal):
            return "530 5.7.0 Authentication required"
        try:
            message = email.message_from_bytes(envelope.original_content or b"",
                                               policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            draft = draft_from(message, envelope)
            gateway = self._gateway
            gateway.acceptor.require_broker()
            prepared = await prepare_email(gateway, principal, draft, gateway.clock())
            refusals = await gateway.acceptor.accept_many(prepared)
        except ApiError as exc:
            return _smtp_error(exc)
        except (ValueError, LookupError, UnicodeError) as exc:
            return f"554 5.6.0 The message could not be read: {exc}"
        refused = next((r for r in refusals if r is not None), None)
        if refused is not None:
            return _smtp_error(refused)
        ids = " ".join(p.message_id for p in prepared)
        log.info("submission accepted", extra={"tenant_id": principal.tenant_id, "ids": ids})
        return f"250 2.0.0 OK queued as {ids}"

    def _services(self) -> EmailServices:
        return email_services(self._gateway)


def _smtp_error(exc: ApiError, default: str = "554 5.6.0") -> str:
    if exc.status == 503:
        return "451 4.3.0 Temporarily unavailable, try again"
    if exc.error == "domain_not_verified":
        return f"553 5.7.1 {exc.message}"
    return f"{default} {exc.message}"


def _addresses(message: EmailMessage, header: str) -> list[str]:
    return [normalise_address(address, field=header.lower())
            for _, address in email.utils.getaddresses(message.get_all(header, [])) if address]


def _body(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return None
    content = part.get_content()
    return content if isinstance(content, str) else None


def _flag(message: EmailMessage, header: str) -> bool:
    value = message.get(header)
    return value is None or str(value).strip().lower() not in ("false", "0", "no", "off")


def draft_from(message: EmailMessage, envelope: Envelope) -> EmailDraft:
    """The REST send's draft for a submitted message: envelope recipients, headers, parts."""
    if any(part.get_content_disposition() == "attachment" for part in message.walk()):
        raise ApiError(422, "validation_error", "attachments are not supported yet")
    raw_from = str(message.get("From") or envelope.mail_from or "")
    sender, sender_address = normalise_mailbox(raw_from, field="from")
    # the envelope decides who receives it; the headers only say who was To, Cc (the rest is Bcc)
    rcpts = {r.lower() for r in envelope.rcpt_tos}
    to = [a for a in _addresses(message, "To") if a.lower() in rcpts]
    cc = [a for a in _addresses(message, "Cc") if a.lower() in rcpts]
    listed = {a.lower() for a in to + cc}
    bcc = [r for r in envelope.rcpt_tos if r.lower() not in listed]
    html, text = finish_content(_body(message, "html"), _body(message, "plain"))
    if html is None and text is None:
        text = ""
    reply_to = str(message["Reply-To"]) if message["Reply-To"] else None
    metadata = {name[len(METADATA_PREFIX):]: str(value) for name, value in message.items()
                if name.lower().startswith(METADATA_PREFIX)}
    headers = {name: str(value) for name, value in message.items()
               if name.lower() not in _DROPPED and not name.lower().startswith("x-postwire-")}
    external = str(message["Message-ID"]).strip().strip("<>") if message["Message-ID"] else None
    return EmailDraft(
        sender=sender, sender_address=sender_address, to=to, cc=cc, bcc=bcc,
        subject=" ".join(str(message.get("Subject") or "").split()), html=html, text=text,
        reply_to=normalise_mailbox(reply_to, field="replyTo")[0] if reply_to else None,
        headers=headers, metadata=metadata, external_id=external[:255] if external else None,
        track_opens=_flag(message, TRACK_OPENS), track_clicks=_flag(message, TRACK_CLICKS),
        source="smtp")


async def start_listener(gateway: Gateway, *, host: str, port: int, tls: ssl.SSLContext,
                         max_bytes: int, hostname: str) -> asyncio.Server:
    """Serve SMTP submission on ``host:port`` on the running loop."""
    handler = SubmissionHandler(gateway)

    def factory() -> SMTP:
        return SMTP(handler, hostname=hostname, tls_context=tls, require_starttls=True,
                    auth_required=True, auth_require_tls=True, authenticator=_capture,
                    data_size_limit=max_bytes, enable_SMTPUTF8=True, ident="Postwire SMTP")

    loop = asyncio.get_running_loop()
    return await loop.create_server(factory, host=host, port=port)
