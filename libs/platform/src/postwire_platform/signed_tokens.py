"""Compact HMAC-signed tokens for URLs that leave the system (email open pixels, click redirects).

``<base64url(JSON payload)>.<base64url(HMAC-SHA256(secret, "v1." + payload part))[:32]>``. The payload
is visible (it holds our message id and, for clicks, the target URL) but cannot be altered: a changed
URL no longer verifies, so the click redirect can never become an open redirect.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

import msgspec

_SIG_CHARS = 32


class BadToken(ValueError):
    """The token is malformed or its signature does not match."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: str, body: str) -> str:
    mac = hmac.new(secret.encode(), f"v1.{body}".encode(), hashlib.sha256).digest()
    return _b64(mac)[:_SIG_CHARS]


def sign(secret: str, payload: dict[str, Any]) -> str:
    """A token carrying ``payload`` (JSON-serialisable), signed with ``secret``."""
    if not secret:
        raise ValueError("a signing secret is required")
    body = _b64(msgspec.json.encode(payload))
    return f"{body}.{_signature(secret, body)}"


def verify(secret: str, token: str) -> dict[str, Any]:
    """The payload of ``token`` if ``secret`` signed it; ``BadToken`` otherwise."""
    if not secret:
        raise BadToken("no signing secret configured")
    body, _, signature = token.partition(".")
    if not body or not signature:
        raise BadToken("malformed token")
    if not hmac.compare_digest(signature.encode(), _signature(secret, body).encode()):
        raise BadToken("bad signature")
    try:
        payload = msgspec.json.decode(_unb64(body))
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise BadToken("malformed payload") from None
    if not isinstance(payload, dict):
        raise BadToken("malformed payload")
    return payload


SIGNATURE_HEADER = "X-Postwire-Signature"
"""Header of a signed callback body (MTA feedback): ``t=<unix seconds>,v1=<hex HMAC-SHA256>``."""


def _body_mac(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign_body(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-Postwire-Signature`` value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    return f"t={timestamp},v1={_body_mac(secret, body, timestamp)}"


def verify_body(secret: str, body: bytes, header: str | None, *, now: float,
                tolerance: float = 300.0) -> None:
    """Raise ``BadToken`` unless ``header`` signs ``body`` with ``secret`` within ``tolerance`` s."""
    if not secret:
        raise BadToken("no signing secret configured")
    if not header:
        raise BadToken("missing signature")
    parts = dict(item.strip().split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        raise BadToken("malformed signature timestamp") from None
    if abs(now - timestamp) > tolerance:
        raise BadToken("signature timestamp too old or in the future")
    expected = _body_mac(secret, body, timestamp)
    given = [v for k, v in (item.strip().split("=", 1) for item in header.split(",") if "=" in item)
             if k == "v1"]
    if not any(hmac.compare_digest(g.encode(), expected.encode()) for g in given):
        raise BadToken("bad signature")
