"""The signed provider status callback: HMAC-SHA256 over the timestamp and the raw body.

``X-Postwire-Timestamp: <unix seconds>`` and ``X-Postwire-Signature: v1=<hex>`` (several space-separated
``v1=`` values are accepted, for secret rotation), where ``<hex>`` is HMAC-SHA256 keyed with the shared
secret over ``"{timestamp}." + body``. A timestamp further than the tolerance from now is refused, so a
captured request cannot be replayed later; within the window a replay is harmless, as the event ids are
deterministic and reporting records each event once.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

TIMESTAMP_HEADER = "x-postwire-timestamp"
SIGNATURE_HEADER = "x-postwire-signature"


class SignatureMissing(Exception):
    """No timestamp or no signature: 401."""


class SignatureInvalid(Exception):
    """Wrong signature, unreadable or stale timestamp: 403."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=<hex>`` for ``body`` sent at ``timestamp`` (what a provider computes)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def verify(secrets: list[str], timestamp: str | None, signature: str | None, body: bytes,
           now: datetime, tolerance: float) -> None:
    """Raise unless one ``v1=`` signature matches one secret and the timestamp is fresh."""
    if not timestamp or not signature:
        raise SignatureMissing("missing X-Postwire-Timestamp or X-Postwire-Signature")
    if not timestamp.strip().isdigit():
        raise SignatureInvalid("unreadable timestamp")
    sent = int(timestamp.strip())
    if abs(now.timestamp() - sent) > tolerance:
        raise SignatureInvalid("timestamp outside the replay window")
    given = [part for part in signature.split() if part.startswith("v1=")]
    for secret in secrets:
        if not secret:
            continue
        expected = sign(secret, sent, body)
        if any(hmac.compare_digest(expected.encode(), g.encode()) for g in given):
            return
    raise SignatureInvalid("signature does not match")
