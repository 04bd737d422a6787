"""The signed headers of one attempt, per Standard Webhooks v1, made by the ``standardwebhooks`` package.

``webhook-id`` (stable across retries, the receiver's idempotency key), ``webhook-timestamp`` (Unix
seconds of this attempt) and ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``
per signing secret, space-separated. During a secret rotation's overlap an endpoint has two secrets and
every attempt carries both signatures, so a receiver holding either one verifies.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache

from standardwebhooks import Webhook

from .events import utc


@lru_cache(maxsize=4096)
def _signer(secret: str) -> Webhook:
    return Webhook(secret)  # decodes the secret once, not on every attempt


def sign(secret: str, msg_id: str, at: datetime, body: bytes) -> str:
    """``v1,<signature>`` of ``body`` sent as ``msg_id`` at ``at`` (seconds precision, UTC)."""
    return _signer(secret).sign(msg_id, utc(at), body.decode())


def signed_headers(secrets: Sequence[str], msg_id: str, at: datetime,
                   body: bytes) -> dict[str, str]:
    """The headers of one attempt: id, this attempt's timestamp, a signature per secret, content type."""
    at = utc(at).replace(microsecond=0)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(sign(s, msg_id, at, body) for s in secrets),
        "content-type": "application/json",
    }
