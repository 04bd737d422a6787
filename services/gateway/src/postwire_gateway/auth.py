"""API key authentication: ``Authorization: Bearer <key>`` to a tenant, a mode and scopes.

Key records are cached in-process for a few seconds, so a busy client costs no MongoDB round trip for
authentication (a key in use is renewed in the background before it expires, and the requests that
miss it together share one lookup); a revoked key or a suspended tenant takes effect within that TTL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection

from postwire_platform import tenancy
from postwire_platform.cache import TtlCache
from postwire_platform.errors import ApiError
from postwire_platform.mongo import Document
from postwire_platform.service import Runtime

from .availability import mongo_guard
from .ratelimit import SCOPE_KEY, RateLimiter


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's tenant, the key itself, its mode and scopes."""

    tenant_id: str
    key_id: str
    mode: str
    scopes: frozenset[str]

    @property
    def live(self) -> bool:
        return self.mode == "live"


class Authenticator:
    """Resolves bearer keys through ``tenancy.find_key`` with a TTL cache in front."""

    def __init__(self, runtime: Runtime, *, ttl: float, limiter: RateLimiter) -> None:
        self._runtime = runtime
        self._cache: TtlCache[str, Document] = TtlCache(ttl)
        self.limiter = limiter

    async def authenticate(self, request: Request[Any, Any, Any], scope: str) -> Principal:
        """The caller of ``request``, who must hold ``scope``.

        401 ``unauthorized`` (no, unknown or revoked key), 402 ``tenant_suspended``, 429
        ``rate_limited`` (the key's limit is used up), 403 ``forbidden`` (scope missing), 503 when
        MongoDB cannot be asked. Counts the request against the key's rate limit and leaves the rate
        limit headers in the request's scope for the response.
        """
        principal = await self.principal(request, bearer_key(request.headers.get("authorization")))
        if scope not in principal.scopes:
            raise ApiError(403, "forbidden", f"this API key lacks the {scope!r} scope")
        return principal

    async def principal(self, connection: ASGIConnection[Any, Any, Any, Any], key: str) -> Principal:
        """The owner of ``key``, whatever its scopes, counted against its rate limit: 401, 402, 429
        or 503 as ``authenticate`` (which also checks a scope)."""
        record = await self._lookup(key)
        if record is None:
            raise ApiError(401, "unauthorized", "unknown or revoked API key")
        if record["tenant"].get("status") == "suspended":
            raise ApiError(402, "tenant_suspended", "this tenant is suspended")
        limiter = self.limiter
        connection.scope[SCOPE_KEY] = await limiter.take(record["_id"], limiter.limits_of(record))  # type: ignore[literal-required]
        return Principal(tenant_id=record["tenant_id"], key_id=record["_id"],
                         mode=record.get("mode", "test"), scopes=frozenset(record.get("scopes", ())))

    def forget(self, key_hash: str) -> None:
        """Drop a cached key record (after a revocation)."""
        self._cache.discard(key_hash)

    async def _lookup(self, key: str) -> Document | None:
        async with mongo_guard("authentication"):
            return await self._cache.get_or_load(
                tenancy.hash_key(key), lambda: tenancy.find_key(self._runtime.db, key))


def bearer_key(header: str | None) -> str:
    """The key of an ``Authorization: Bearer <key>`` header; 401 when missing or malformed."""
    if not header:
        raise ApiError(401, "unauthorized", "missing Authorization: Bearer <api key> header")
    scheme, _, key = header.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise ApiError(401, "unauthorized", "the Authorization header must be 'Bearer <api key>'")
    return key
