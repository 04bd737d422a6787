"""Carriers behind one small protocol, and the HTTP carrier adapter.

The HTTP protocol is the one in ``docs/architecture.md``: ``POST {url}/messages`` with a bearer token and
``Idempotency-Key: <our message id>``, so a resubmission after a crash or a timeout never sends twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol
from urllib.parse import urlencode

import httpx
import msgspec

from postwire_platform.outbound import SpreadTransport

log = logging.getLogger(__name__)


class SubmitRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One SMS to hand to a carrier."""

    message_id: str
    sender: str
    to: str
    text: str
    callback_url: str
    otp: bool = False
    """Ahead of every STANDARD message waiting for the same carrier."""
    expires_at: datetime | None = None
    """Not to be handed to the carrier after this (an OTP's ``expiresAt``)."""
    before_submit: Callable[[], Awaitable[None]] | None = None
    """Awaited right before the message goes out (for SMPP before each part, inside the bind's window
    and throughput slot): the dispatcher checks there that its claim is still its own. When it
    raises, nothing is sent and the error is the caller's."""


class SubmitResult(msgspec.Struct, frozen=True, kw_only=True):
    """The carrier accepted the message under its own id (the first part's, for SMPP)."""

    carrier_id: str
    part_ids: list[str] = []
    """SMPP: the carrier's id of every part, in order (one for a single-part message)."""


class PermanentCarrierError(Exception):
    """The carrier refused the message; resubmitting will not help."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class TransientCarrierError(Exception):
    """The carrier could not take the message now (timeout, connection, 429, 5xx); retry later."""


class RouteUnavailable(TransientCarrierError):
    """The route cannot take anything now (every SMPP bind down): try the next route."""


class Expired(Exception):
    """The message's ``expires_at`` passed while it waited for the carrier; it was not sent."""


class SmsCarrier(Protocol):
    """Anything that submits an SMS: the HTTP carrier, the sandbox, an SMPP route."""

    async def submit(self, request: SubmitRequest) -> SubmitResult:
        """Submit one message, idempotent on ``request.message_id``; await
        ``request.before_submit`` right before it goes out."""
        ...


def callback_url(base: str, token: str, message_id: str) -> str:
    """The receipt URL a carrier calls back: ``{base}?token=…&mid=<message id>``."""
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}{urlencode({'token': token, 'mid': message_id})}"


class _SubmitBody(msgspec.Struct, frozen=True, kw_only=True):
    sender: str = msgspec.field(name="from")
    to: str
    text: str
    reference: str
    callback_url: str = msgspec.field(name="callbackUrl")


class _Accepted(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    status: str = "accepted"


class _Rejected(msgspec.Struct, frozen=True, kw_only=True):
    error: str = ""
    message: str = ""


_encoder = msgspec.json.Encoder()
_accepted = msgspec.json.Decoder(_Accepted)
_rejected = msgspec.json.Decoder(_Rejected)

_PERMANENT = frozenset({400, 422})
_MISCONFIGURED = frozenset({401, 403})


class HttpCarrier:
    """Speaks the HTTP carrier protocol. Takes an httpx transport so tests can stand in for the network."""

    kind = "http"

    def __init__(self, base_url: str, token: str, *, timeout: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if transport is None:  # one origin: httpx's 100 connections in pools of ten (SpreadTransport)
            transport = SpreadTransport.for_origin(base_url, max_connections=100)
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"} if token else {},
            timeout=timeout,
            transport=transport,
        )

    async def submit(self, request: SubmitRequest) -> SubmitResult:
        """POST the message; map the answer to a result or a permanent/transient error."""
        body = _SubmitBody(sender=request.sender, to=request.to, text=request.text,
                           reference=request.message_id, callback_url=request.callback_url)
        if request.before_submit is not None:
            await request.before_submit()
        try:
            response = await self._client.post(
                "/messages",
                content=_encoder.encode(body),
                headers={"Idempotency-Key": request.message_id,
                         "Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:  # timeouts, refused connections, broken streams
            raise TransientCarrierError(f"carrier unreachable: {exc!r}") from exc
        return _interpret(response)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()


def _interpret(response: httpx.Response) -> SubmitResult:
    status = response.status_code
    if status in (200, 201, 202):
        try:
            return SubmitResult(carrier_id=_accepted.decode(response.content).id)
        except msgspec.DecodeError as exc:
            # Accepted but unreadable: resubmitting under the same Idempotency-Key tells us the id.
            raise TransientCarrierError(f"carrier answered {status} without an id") from exc
    if status in _PERMANENT:
        try:
            rejected = _rejected.decode(response.content)
        except msgspec.DecodeError:
            rejected = _Rejected()
        raise PermanentCarrierError(rejected.error or f"carrier_http_{status}",
                                    rejected.message or response.text[:200] or f"HTTP {status}")
    if status in _MISCONFIGURED:
        log.error("carrier refused our credentials; check SMS_CARRIER_TOKEN",
                  extra={"status_code": status})
        raise TransientCarrierError(f"carrier answered {status}")
    if status == 408 or status == 429 or status >= 500:
        raise TransientCarrierError(f"carrier answered {status}")
    raise PermanentCarrierError(f"carrier_http_{status}", response.text[:200] or f"HTTP {status}")
