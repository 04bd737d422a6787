"""The tenants' webhook endpoints, read from ``webhook_endpoints`` and cached for a few seconds."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from pymongo.asynchronous.database import AsyncDatabase

from postwire_platform.clock import utcnow
from postwire_platform.mongo import WEBHOOK_ENDPOINTS, Document


@dataclass(frozen=True)
class Endpoint:
    """An enabled endpoint: where to POST, which event types it wants, and its signing secret."""

    id: str
    tenant_id: str
    url: str
    events: frozenset[str]
    secret: str

    def wants(self, event_type: str) -> bool:
        """True when the endpoint subscribed to ``event_type`` (or to everything, ``"*"``)."""
        return "*" in self.events or event_type in self.events


def _endpoint(doc: Document) -> Endpoint:
    return Endpoint(id=doc["_id"], tenant_id=doc["tenant_id"], url=doc["url"],
                    events=frozenset(doc.get("events") or ["*"]), secret=doc["secret"])


class EndpointCache:
    """A tenant's enabled endpoints, re-read at most every ``ttl`` seconds."""

    def __init__(self, db: AsyncDatabase[Document], ttl: float) -> None:
        self._collection = db[WEBHOOK_ENDPOINTS]
        self._ttl = ttl
        self._cached: dict[str, tuple[float, list[Endpoint]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def for_tenant(self, tenant_id: str) -> list[Endpoint]:
        """The tenant's enabled endpoints (one query per tenant and ``ttl``, however many ask)."""
        hit = self._cached.get(tenant_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        lock = self._locks.setdefault(tenant_id, asyncio.Lock())
        async with lock:
            hit = self._cached.get(tenant_id)
            if hit is not None and hit[0] > time.monotonic():
                return hit[1]
            cursor = self._collection.find({"tenant_id": tenant_id, "enabled": True},
                                           projection=["tenant_id", "url", "events", "secret"])
            endpoints = [_endpoint(doc) async for doc in cursor]
            self._cached[tenant_id] = (time.monotonic() + self._ttl, endpoints)
            return endpoints

    async def find(self, tenant_id: str, endpoint_id: str) -> Endpoint | None:
        """The tenant's endpoint ``endpoint_id`` if it is still enabled."""
        return next((e for e in await self.for_tenant(tenant_id) if e.id == endpoint_id), None)

    async def disable(self, endpoint: Endpoint, reason: str) -> None:
        """Switch the endpoint off (it answered 410 Gone) and forget the tenant's cached list."""
        await self._collection.update_one(
            {"_id": endpoint.id, "tenant_id": endpoint.tenant_id},
            {"$set": {"enabled": False, "disabled_reason": reason, "disabled_at": utcnow()}})
        self._cached.pop(endpoint.tenant_id, None)
