"""Idempotency keys on send and batch endpoints (SPEC: per tenant, 24 h, replay or 409).

``Idempotency-Key`` or ``X-Idempotency-Key``. The first request with a key claims it in
``idempotency_keys`` (``_id`` = tenant + key, a fingerprint of method, path and body, state
``in_flight``); when it answers 2xx, the answer is stored with the record. A later request with the same
key and body gets that answer again with ``Idempotent-Replayed: true``; a different body, or the first
request still running, is 409. As with Stripe, nothing is kept for a request that did not succeed (a
validation error or a 503 changed nothing), so the client may retry with the same key.

Records expire through a TTL index on ``expires_at``; the read path also treats an expired record as
absent, since a TTL monitor runs only once a minute. A claim whose request died with its gateway is
taken over after ``IN_FLIGHT_LEASE``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import msgspec
from litestar import Request, Response
from pymongo.errors import DuplicateKeyError

from postwire_platform.clock import Clock
from postwire_platform.errors import ApiError
from postwire_platform.mongo import IDEMPOTENCY_KEYS as COLLECTION
from postwire_platform.service import Runtime

from .availability import mongo_guard

log = logging.getLogger(__name__)

HEADERS = ("idempotency-key", "x-idempotency-key")
MAX_KEY_LENGTH = 255
RETENTION = timedelta(hours=24)
IN_FLIGHT_LEASE = timedelta(seconds=60)

Outcome = tuple[int, dict[str, Any]]


def key_of(request: Request[Any, Any, Any]) -> str | None:
    """The request's idempotency key, or None; 422 when it is empty or too long."""
    for name in HEADERS:
        value = request.headers.get(name)
        if value is not None:
            value = value.strip()
            if not value or len(value) > MAX_KEY_LENGTH:
                raise ApiError(422, "validation_error",
                               f"{name.title()} must be 1 to {MAX_KEY_LENGTH} characters",
                               field="Idempotency-Key")
            return value
    return None


class Idempotency:
    """Runs a send at most once per (tenant, key)."""

    def __init__(self, runtime: Runtime, clock: Clock) -> None:
        self._runtime = runtime
        self._clock = clock

    async def run(self, request: Request[Any, Any, Any], tenant_id: str, body: bytes,
                  produce: Callable[[], Awaitable[Outcome]]) -> Response[bytes]:
        key = key_of(request)
        if key is None:
            return _response(*await produce())
        fingerprint = hashlib.sha256(
            b"\n".join([request.method.encode(), request.url.path.encode(), body])).hexdigest()
        record_id = f"{tenant_id}:{key}"
        replay = await self._claim(record_id, tenant_id, fingerprint)
        if replay is not None:
            return replay
        try:
            status, payload = await produce()
        except BaseException:
            await self._release(record_id)
            raise
        if 200 <= status < 300:
            await self._complete(record_id, status, payload)
        else:
            await self._release(record_id)
        return _response(status, payload)

    async def _claim(self, record_id: str, tenant_id: str, fingerprint: str) -> Response[bytes] | None:
        keys = self._runtime.db[COLLECTION]
        for _ in range(3):
            now = self._clock()
            async with mongo_guard("idempotency claim"):
                try:
                    await keys.insert_one({"_id": record_id, "tenant_id": tenant_id,
                                           "fingerprint": fingerprint, "state": "in_flight",
                                           "created_at": now, "claimed_at": now,
                                           "expires_at": now + RETENTION})
                    return None
                except DuplicateKeyError:
                    pass
            async with mongo_guard("idempotency lookup"):
                existing = await keys.find_one({"_id": record_id})
            if existing is None:
                continue  # expired and removed meanwhile
            if existing["expires_at"] <= now:
                async with mongo_guard("idempotency expiry"):
                    await keys.delete_one({"_id": record_id, "expires_at": existing["expires_at"]})
                continue
            if existing["fingerprint"] != fingerprint:
                raise ApiError(409, "idempotency_key_reused",
                               "this Idempotency-Key was already used with a different request")
            if existing["state"] == "done":
                return _response(existing["status"], msgspec.json.decode(existing["response"]),
                                 replayed=True)
            if existing["claimed_at"] > now - IN_FLIGHT_LEASE:
                raise ApiError(409, "idempotency_request_in_progress",
                               "a request with this Idempotency-Key is still being processed",
                               headers={"Retry-After": "1"})
            async with mongo_guard("idempotency takeover"):
                taken = await keys.update_one(
                    {"_id": record_id, "state": "in_flight", "claimed_at": existing["claimed_at"]},
                    {"$set": {"claimed_at": now}})
            if taken.modified_count == 1:
                return None
        raise ApiError(409, "idempotency_request_in_progress",
                       "a request with this Idempotency-Key is still being processed",
                       headers={"Retry-After": "1"})

    async def _complete(self, record_id: str, status: int, payload: dict[str, Any]) -> None:
        try:
            await self._runtime.db[COLLECTION].update_one(
                {"_id": record_id},
                {"$set": {"state": "done", "status": status,
                          "response": msgspec.json.encode(payload)}})
        except Exception:  # the send succeeded; a retry would then see 409 until the lease lapses
            log.warning("could not record idempotent response for %s", record_id, exc_info=True)

    async def _release(self, record_id: str) -> None:
        try:
            await self._runtime.db[COLLECTION].delete_one({"_id": record_id, "state": "in_flight"})
        except Exception:  # the lease lapses on its own
            log.warning("could not release idempotency key %s", record_id, exc_info=True)


def _response(status: int, payload: dict[str, Any], *, replayed: bool = False) -> Response[bytes]:
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return Response(msgspec.json.encode(payload), status_code=status, media_type="application/json",
                    headers=headers)

