"""Request bodies, for batch items (each channel's ``send`` takes the same fields as keywords).

``None`` fields are left out of the JSON, so the server's defaults apply.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec


class Params(msgspec.Struct, rename="camel", kw_only=True, frozen=True, omit_defaults=True):
    """The base of every request body."""


class SmsSend(Params, frozen=True, kw_only=True):
    """One SMS: ``POST /v1/sms/send`` or an item of ``POST /v1/sms/batch``."""

    to: str
    """E.164 (``+14155552671``); national formats with spaces and dashes are normalised."""
    body: str
    sender_id: str
    """A sender id approved for the tenant."""
    flow: Literal["OTP", "STANDARD"] | None = None
    metadata: dict[str, str] | None = None
    external_id: str | None = None


class EmailSend(Params, frozen=True, kw_only=True):
    """One email: ``POST /v1/emails/send`` or an item of ``POST /v1/emails/batch``.

    Either the content (``subject`` and ``html`` and/or ``text``) or a template (``template_id``,
    optionally ``template_version``, and ``variables``). Every recipient in ``to``, ``cc`` and ``bcc``
    becomes a message of its own."""

    from_: str = msgspec.field(name="from")
    """``noreply@acme.example`` or ``Acme <noreply@acme.example>``; live keys need a verified domain."""
    to: list[str]
    cc: list[str] | None = None
    bcc: list[str] | None = None
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    reply_to: str | None = None
    headers: dict[str, str] | None = None
    template_id: str | None = None
    template_version: int | None = None
    variables: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    external_id: str | None = None
    track_opens: bool | None = None
    track_clicks: bool | None = None


class WhatsAppTemplate(Params, frozen=True, kw_only=True):
    """An approved Meta template: its name, language (``en_US``) and the body's ``{{n}}`` values."""

    name: str
    language: str
    body_parameters: list[str] | None = None


class WhatsAppSend(Params, frozen=True, kw_only=True):
    """One WhatsApp message (exactly one of ``text`` and ``template``)."""

    to: str
    text: str | None = None
    template: WhatsAppTemplate | None = None
    metadata: dict[str, str] | None = None
    external_id: str | None = None
