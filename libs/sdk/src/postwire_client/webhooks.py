"""Verifying the webhooks Postwire sends you (Standard Webhooks v1).

Each delivery carries ``webhook-id`` (the same on every retry: your idempotency key),
``webhook-timestamp`` (Unix seconds of this attempt) and ``webhook-signature``: a space-separated list of
``v1,<base64 HMAC-SHA256>`` over ``"{id}.{timestamp}.{body}"``. While an endpoint's secret is being
rotated there are two signatures, one per secret; one valid signature is enough. Verify the exact bytes
you received, before parsing them::

    from postwire_client.webhooks import Webhook

    hook = Webhook(os.environ["POSTWIRE_WEBHOOK_SECRET"])      # "whsec_…"

    @app.post("/postwire")
    async def receive(request):
        event = hook.verify_event(await request.body(), request.headers)   # raises if forged
        ...

Implemented with the standard library (``hmac.compare_digest`` for the constant-time comparison) so the
client needs no extra dependency; the tests check it against the ``standardwebhooks`` package.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec

from .errors import WebhookVerificationError
from .models import Model

SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE = 300.0
"""Seconds a timestamp may be away from now (either way): 5 minutes, as the spec recommends."""


class WebhookEventData(Model, frozen=True, kw_only=True):
    """The message a status event is about."""

    message_id: str | None = None
    channel: str | None = None
    status: str | None = None
    """The message's status after this event."""
    event_status: str | None = None
    """The status the event itself reported (it may be older than ``status``: events arrive late)."""
    recipient: Any = None
    provider_message_id: str | None = None
    error_code: str | None = None
    error_reason: str | None = None
    metadata: dict[str, str] = {}
    occurred_at: datetime | None = None


class WebhookEvent(Model, frozen=True, kw_only=True):
    """A webhook body: ``type`` (``sms_delivered``, ``email_hard_bounce``, …), when, and ``data``."""

    type: str
    timestamp: datetime | None = None
    data: WebhookEventData = msgspec.field(default_factory=WebhookEventData)


_event_decoder = msgspec.json.Decoder(WebhookEvent)


def _secret_bytes(secret: str) -> bytes:
    raw = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from None


class Webhook:
    """Verifies deliveries signed with one of ``secrets`` (pass both while you rotate yours)."""

    def __init__(self, secrets: str | Sequence[str], *, tolerance: float = DEFAULT_TOLERANCE) -> None:
        names = [secrets] if isinstance(secrets, str) else list(secrets)
        if not names:
            raise ValueError("at least one secret is needed")
        self._keys = [_secret_bytes(s) for s in names]
        self.tolerance = tolerance

    def sign(self, msg_id: str, timestamp: int, payload: bytes | str) -> str:
        """``v1,<signature>`` of ``payload`` with the first secret (for tests and tools)."""
        return "v1," + self._signature(self._keys[0], msg_id, str(timestamp), _bytes(payload))

    def verify(self, payload: bytes | str, headers: Mapping[str, str], *,
               now: float | None = None) -> Any:
        """The decoded JSON body if the delivery is genuine and fresh; else ``WebhookVerificationError``."""
        data = _bytes(payload)
        self._check(data, headers, time.time() if now is None else now)
        try:
            return msgspec.json.decode(data)
        except msgspec.DecodeError:
            raise WebhookVerificationError("the signed body is not JSON") from None

    def verify_event(self, payload: bytes | str, headers: Mapping[str, str], *,
                     now: float | None = None) -> WebhookEvent:
        """Like :meth:`verify`, decoded into a :class:`WebhookEvent`."""
        data = _bytes(payload)
        self._check(data, headers, time.time() if now is None else now)
        try:
            return _event_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise WebhookVerificationError(f"the signed body is not a Postwire event: {exc}") from None

    def _check(self, payload: bytes, headers: Mapping[str, str], now: float) -> None:
        lowered = {k.lower(): v for k, v in headers.items()}
        msg_id = lowered.get("webhook-id")
        timestamp = lowered.get("webhook-timestamp")
        signatures = lowered.get("webhook-signature")
        if not msg_id or not timestamp or not signatures:
            raise WebhookVerificationError(
                "missing webhook-id, webhook-timestamp or webhook-signature header")
        try:
            sent_at = int(timestamp.strip())
        except ValueError:
            raise WebhookVerificationError("webhook-timestamp is not a Unix time") from None
        if sent_at < now - self.tolerance:
            raise WebhookVerificationError("webhook-timestamp is too old")
        if sent_at > now + self.tolerance:
            raise WebhookVerificationError("webhook-timestamp is too far in the future")
        offered = [sig for version, _, sig in (part.partition(",") for part in signatures.split())
                   if version == "v1" and sig]
        for key in self._keys:
            expected = self._signature(key, msg_id, timestamp.strip(), payload).encode()
            if any(hmac.compare_digest(expected, sig.encode()) for sig in offered):
                return
        raise WebhookVerificationError("no matching signature")

    @staticmethod
    def _signature(key: bytes, msg_id: str, timestamp: str, payload: bytes) -> str:
        signed = f"{msg_id}.{timestamp}.".encode() + payload
        return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def verify(payload: bytes | str, headers: Mapping[str, str], secret: str | Sequence[str], *,
           tolerance: float = DEFAULT_TOLERANCE, now: float | None = None) -> Any:
    """Verify one delivery with ``secret`` (or any of several); returns the decoded JSON body."""
    return Webhook(secret, tolerance=tolerance).verify(payload, headers, now=now)


def _bytes(payload: bytes | str) -> bytes:
    return payload.encode() if isinstance(payload, str) else bytes(payload)
