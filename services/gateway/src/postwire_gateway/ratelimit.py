"""Rate limits per API key, shared by every gateway replica (SPEC: default 100/min, bursts of 20/s).

Two fixed windows per key, a minute and a second; a request needs a token from both. The shared count of
each window lives in MongoDB (``rate_limits``, ``_id`` = key, window kind and start; TTL on
``expires_at``). A replica does not write once per request: it leases tokens from the shared window in
chunks (a tenth of the limit, at least 1) with a conditional ``$inc`` that can never take the count past
the limit, and hands them out locally. So replicas together never exceed a key's limit; at worst a replica
holds a few leased tokens another replica could have used, and tokens left at the end of a window lapse.

Limits per key: the key record's ``rate_limit`` {``per_minute``, ``per_second``} (set with
``postwire keys create --rate-limit`` or by an admin through ``/v1/api-keys``), else the settings'
defaults. Every authenticated response carries ``X-RateLimit-Limit`` (per minute),
``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (epoch seconds of the minute window's end); a refused
request gets 429 ``rate_limited`` with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from postwire_platform.errors import ApiError
from postwire_platform.mongo import RATE_LIMITS, Document
from postwire_platform.service import Runtime

from .availability import mongo_guard

SCOPE_KEY = "postwire.ratelimit_headers"
MAX_CHUNK = 1000


@dataclass(frozen=True)
class Limits:
    per_minute: int
    per_second: int


@dataclass
class _Window:
    start: int = -1
    local: int = 0
    shared: int = 0
    exhausted: bool = False


@dataclass
class _KeyState:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    windows: dict[int, _Window] = field(default_factory=dict)


class RateLimiter:
    """Checks and counts requests per key against the shared windows."""

    def __init__(self, runtime: Runtime, *, per_minute: int, per_second: int,
                 now: Callable[[], float] = time.time) -> None:
        self._runtime = runtime
        self.default = Limits(per_minute, per_second)
        self._now = now
        self._keys: dict[str, _KeyState] = {}

    def limits_of(self, record: Document) -> Limits:
        configured = record.get("rate_limit") or {}
        return Limits(int(configured.get("per_minute") or self.default.per_minute),
                      int(configured.get("per_second") or self.default.per_second))

    async def take(self, key_id: str, limits: Limits) -> dict[str, str]:
        """Count one request; returns the headers to send, or raises 429 with them."""
        state = self._keys.setdefault(key_id, _KeyState())
        now = self._now()
        minute_start = int(now // 60) * 60
        async with state.lock:
            minute = await self._token(key_id, state, 60, limits.per_minute, now)
            second = await self._token(key_id, state, 1, limits.per_second, now) if minute else False
            if minute and not second:
                state.windows[60].local += 1  # give the minute token back: this request is refused
            window = state.windows[60]
            remaining = max(0, limits.per_minute - window.shared) + window.local
        headers = {"X-RateLimit-Limit": str(limits.per_minute),
                   "X-RateLimit-Remaining": str(remaining),
                   "X-RateLimit-Reset": str(minute_start + 60)}
        if minute and second:
            return headers
        retry_after = math.ceil(minute_start + 60 - now) if not minute else 1
        raise ApiError(429, "rate_limited",
                       f"rate limit exceeded ({limits.per_minute}/min, bursts of "
                       f"{limits.per_second}/s); retry after {retry_after}s",
                       headers={**headers, "Retry-After": str(max(1, retry_after))})

    async def _token(self, key_id: str, state: _KeyState, length: int, limit: int, now: float) -> bool:
        start = int(now // length) * length
        window = state.windows.get(length)
        if window is None or window.start != start:
            window = state.windows[length] = _Window(start=start)
        if window.local > 0:
            window.local -= 1
            return True
        if window.exhausted:
            return False
        leased, shared = await self._lease(key_id, length, start, limit)
        window.shared = shared
        if leased == 0:
            window.exhausted = True
            return False
        window.local = leased - 1
        return True

    async def _lease(self, key_id: str, length: int, start: int, limit: int) -> tuple[int, int]:
        """Take up to a chunk of the shared window; returns (tokens taken, shared count after)."""
        collection = self._runtime.db[RATE_LIMITS]
        doc_id = f"{key_id}:{length}:{start}"
        expires = datetime.fromtimestamp(start + length, UTC) + timedelta(seconds=60)
        chunk = min(MAX_CHUNK, max(1, limit // 10))
        async with mongo_guard("rate limit"):
            while chunk >= 1:
                try:
                    doc: Any = await collection.find_one_and_update(
                        {"_id": doc_id, "count": {"$lte": limit - chunk}},
                        {"$inc": {"count": chunk}, "$setOnInsert": {"expires_at": expires}},
                        upsert=True, return_document=ReturnDocument.AFTER)
                    return chunk, int(doc["count"])
                except DuplicateKeyError:
                    pass  # the window exists with too little left for a whole chunk
                current = await collection.find_one({"_id": doc_id})
                left = limit - int(current["count"]) if current else limit
                if left <= 0:
                    return 0, limit
                chunk = min(chunk - 1, left)
        return 0, limit


def headers_middleware(app: Any) -> Any:
    """ASGI middleware adding the rate limit headers ``authenticate`` left in the scope to the response
    (whatever produced it: a handler, an ``ApiError`` or Litestar itself)."""

    async def middleware(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            extra = scope.get(SCOPE_KEY)
            if message["type"] == "http.response.start" and extra:
                headers = list(message.get("headers") or [])
                present = {bytes(name).lower() for name, _ in headers}
                headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()
                            if k.lower().encode() not in present]
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware
