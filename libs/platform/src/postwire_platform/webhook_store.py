"""Customer webhook endpoints as stored in ``webhook_endpoints``: what the gateway, the operator CLI and
webhook-fanout share.

The signing secret (``whsec_…``) is shown once and stored sealed (``secrets_at_rest``, context
``webhook_endpoints.secret:<endpoint id>``). Rotating moves the sealed current secret, unchanged, into
``previous_secrets`` with an expiry: until then webhook-fanout signs with both, so receivers can
switch over without dropping a delivery.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from .clock import utcnow
from .ids import new_id
from .mongo import WEBHOOK_ENDPOINTS, Document
from .secrets_at_rest import Keyring, SecretError, is_encrypted
from .tenancy import generate_webhook_secret

log = logging.getLogger(__name__)

Mode = Literal["live", "test"]


def secret_context(endpoint_id: str) -> str:
    """The associated data that binds a sealed secret to its endpoint."""
    return f"{WEBHOOK_ENDPOINTS}.secret:{endpoint_id}"


async def create_endpoint(db: AsyncDatabase[Document], keyring: Keyring, tenant_id: str, url: str, *,
                          events: list[str] | None = None, description: str = "",
                          enabled: bool = True, mode: Mode = "live") -> tuple[str, Document]:
    """Create an endpoint; returns (its signing secret, shown once; the stored record).

    ``mode`` is that of the key that created it: a ``test`` endpoint never receives live events.
    """
    secret = generate_webhook_secret()
    endpoint_id = new_id("we_")
    now = utcnow()
    doc: dict[str, Any] = {
        "_id": endpoint_id, "tenant_id": tenant_id, "url": url, "events": events or ["*"],
        "description": description, "enabled": enabled, "mode": mode,
        "secret": keyring.encrypt(secret, context=secret_context(endpoint_id)),
        "previous_secrets": [], "created_at": now, "updated_at": now,
    }
    await db[WEBHOOK_ENDPOINTS].insert_one(doc)
    return secret, doc


async def rotate_secret(db: AsyncDatabase[Document], keyring: Keyring, tenant_id: str,
                        endpoint_id: str, *, overlap: timedelta) -> tuple[str, Document] | None:
    """Give the endpoint a new secret; the current one keeps signing for ``overlap``.

    Returns (the new secret, shown once; the updated record), or None for an unknown endpoint.
    Previous secrets whose overlap has ended are dropped.
    """
    now = utcnow()
    current = await db[WEBHOOK_ENDPOINTS].find_one({"_id": endpoint_id, "tenant_id": tenant_id})
    if current is None:
        return None
    secret = generate_webhook_secret()
    old = current["secret"]
    if not is_encrypted(old):  # written before secrets were sealed: seal it on the way out
        old = keyring.encrypt(old, context=secret_context(endpoint_id))
    kept = [p for p in current.get("previous_secrets") or [] if _aware(p["expires_at"]) > now]
    if overlap > timedelta(0):
        kept.append({"secret": old, "expires_at": now + overlap})
    updated = await db[WEBHOOK_ENDPOINTS].find_one_and_update(
        {"_id": endpoint_id, "tenant_id": tenant_id, "secret": current["secret"]},
        {"$set": {"secret": keyring.encrypt(secret, context=secret_context(endpoint_id)),
                  "previous_secrets": kept, "rotated_at": now, "updated_at": now}},
        return_document=ReturnDocument.AFTER)
    if updated is None:  # rotated or deleted concurrently: let the caller see the current state
        return None
    return secret, updated


@dataclass(frozen=True)
class SigningSecret:
    """A secret that signs until ``expires_at`` (None: the current one)."""

    secret: str
    expires_at: datetime | None = None


def signing_secrets(doc: Document, keyring: Keyring) -> list[SigningSecret]:
    """The endpoint's current secret, then the previous ones (any expiry; the caller filters).

    Raises ``secrets_at_rest.SecretError`` when the current secret cannot be opened; a previous one
    that cannot be opened (its key already dropped from ``SECRET_KEYS``) is left out, so it never
    stops the current secret from signing.
    """
    context = secret_context(doc["_id"])

    def opened(stored: str) -> str:
        # endpoints created before secrets were sealed hold the plain ``whsec_…`` value
        return keyring.decrypt(stored, context=context) if is_encrypted(stored) else stored

    out = [SigningSecret(opened(doc["secret"]))]
    for previous in doc.get("previous_secrets") or []:
        try:
            out.append(SigningSecret(opened(previous["secret"]), _aware(previous["expires_at"])))
        except SecretError as exc:
            log.warning("a previous webhook secret cannot be opened; it no longer signs",
                        extra={"endpoint_id": doc["_id"], "error": str(exc)})
    return out


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
