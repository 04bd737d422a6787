"""The tenants' webhook endpoints, read from ``webhook_endpoints`` and cached for a few seconds.

Secrets are opened (``secrets_at_rest``) when an endpoint is read into the cache; an endpoint whose
secret cannot be opened (``SECRET_KEYS`` lacks its key) stays listed with ``secret_error`` set, so its
deliveries are recorded as failed attempts and retried rather than silently dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pymongo.asynchronous.database import AsyncDatabase

from postwire_platform.cache import TtlCache
from postwire_platform.clock import utcnow
from postwire_platform.mongo import WEBHOOK_ENDPOINTS, Document
from postwire_platform.secrets_at_rest import Keyring, SecretError
from postwire_platform.webhook_store import SigningSecret, signing_secrets

log = logging.getLogger(__name__)

_FIELDS = ["tenant_id", "url", "events", "secret", "previous_secrets", "mode"]


@dataclass(frozen=True)
class Endpoint:
    """An enabled endpoint: where to POST, which event types it wants, and its signing secrets."""

    id: str
    tenant_id: str
    url: str
    events: frozenset[str]
    secrets: tuple[SigningSecret, ...]
    mode: str = "live"
    secret_error: str | None = None

    def wants(self, event_type: str, *, live: bool = True) -> bool:
        """True when the endpoint subscribed to ``event_type`` (or to everything, ``"*"``); an
        endpoint made with a test key never receives live events."""
        if live and self.mode == "test":
            return False
        return "*" in self.events or event_type in self.events

    def secrets_at(self, now: datetime) -> list[str]:
        """The secrets that sign at ``now``: the current one and those still in their overlap."""
        return [s.secret for s in self.secrets if s.expires_at is None or s.expires_at > now]


def _always(_: object) -> bool:
    return True


def _endpoint(doc: Document, keyring: Keyring) -> Endpoint:
    secrets: tuple[SigningSecret, ...] = ()
    error = None
    try:
        secrets = tuple(signing_secrets(doc, keyring))
    except SecretError as exc:
        error = f"secret_unavailable: {exc}"
        log.error("cannot open an endpoint's secret", extra={"endpoint_id": doc["_id"],
                                                             "error": str(exc)})
    return Endpoint(id=doc["_id"], tenant_id=doc["tenant_id"], url=doc["url"],
                    events=frozenset(doc.get("events") or ["*"]), secrets=secrets,
                    mode=doc.get("mode") or "live", secret_error=error)


class EndpointCache:
    """A tenant's enabled endpoints, re-read at most every ``ttl`` seconds: one query however many
    ask, and a busy tenant's list is renewed in the background before it expires, so deliveries do
    not wait for the database at each expiry."""

    def __init__(self, db: AsyncDatabase[Document], keyring: Keyring, ttl: float) -> None:
        self._collection = db[WEBHOOK_ENDPOINTS]
        self._keyring = keyring
        self._cached: TtlCache[str, list[Endpoint]] = TtlCache(ttl)

    async def for_tenant(self, tenant_id: str) -> list[Endpoint]:
        """The tenant's enabled endpoints (an empty list is kept too)."""
        async def load() -> list[Endpoint]:
            cursor = self._collection.find({"tenant_id": tenant_id, "enabled": True},
                                           projection=_FIELDS)
            return [_endpoint(doc, self._keyring) async for doc in cursor]

        return await self._cached.get_or_load(tenant_id, load, keep=_always) or []

    async def find(self, tenant_id: str, endpoint_id: str) -> Endpoint | None:
        """The tenant's endpoint ``endpoint_id`` if it is still enabled."""
        return next((e for e in await self.for_tenant(tenant_id) if e.id == endpoint_id), None)

    async def absence(self, tenant_id: str, endpoint_id: str) -> Literal["disabled", "deleted"]:
        """Why ``find`` did not return the endpoint."""
        doc = await self._collection.find_one({"_id": endpoint_id, "tenant_id": tenant_id},
                                              projection=["enabled"])
        return "deleted" if doc is None else "disabled"

    async def disable(self, endpoint: Endpoint, reason: str) -> None:
        """Switch the endpoint off (it answered 410 Gone) and forget the tenant's cached list."""
        await self._collection.update_one(
            {"_id": endpoint.id, "tenant_id": endpoint.tenant_id},
            {"$set": {"enabled": False, "disabled_reason": reason, "disabled_at": utcnow()}})
        self._cached.discard(endpoint.tenant_id)
