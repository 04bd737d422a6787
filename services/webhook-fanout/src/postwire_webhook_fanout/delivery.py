"""One attempt at delivering a notification to one endpoint, its record, and the next attempt's timing.

2xx: delivered. 410: the endpoint is disabled (outcome ``failed``). Anything else, or no answer: the
next attempt goes to the delay queue of ``webhook-fanout.deliver`` (outcome ``retrying``) until the
schedule is used up (outcome ``failed``). Every attempt is recorded in ``webhook_attempts``.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Literal

import httpx
from prometheus_client import Counter, Histogram
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts import topology
from postwire_contracts.messages import StatusChanged
from postwire_platform.broker import Publisher
from postwire_platform.clock import utcnow
from postwire_platform.ids import new_id
from postwire_platform.mongo import WEBHOOK_ATTEMPTS, Document

from .endpoints import Endpoint, EndpointCache
from .jobs import DeliveryJob
from .signing import payload, signed_headers, webhook_id

log = logging.getLogger(__name__)

Outcome = Literal["delivered", "failed", "retrying"]

RETRY_AFTER_STATUSES = frozenset({429, 502, 503, 504})
"""Answers whose ``Retry-After`` header is honoured."""

ATTEMPTS = Counter("postwire_webhook_attempts", "Webhook delivery attempts by outcome", ["outcome"])
LATENCY = Histogram("postwire_webhook_latency_seconds", "Customer endpoint answer time")


def next_delay(delays: list[float], attempt: int, retry_after: float | None) -> float | None:
    """Seconds before attempt ``attempt + 1``, or None when ``attempt`` was the last one.

    The schedule gives ``delays[attempt - 1]``; a ``Retry-After`` within the schedule moves that to
    the first scheduled delay at least as long as both (a longer one is ignored). Only scheduled
    delays are used: each is a declared delay queue.
    """
    if attempt > len(delays):
        return None
    planned = delays[attempt - 1]
    if retry_after is None or retry_after <= planned:
        return planned
    return next((d for d in sorted(delays) if d >= retry_after), planned)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    except (TypeError, ValueError):
        return None


class Deliverer:
    """Makes attempts with a shared HTTP client and schedules retries through delay queues."""

    def __init__(self, db: AsyncDatabase[Document], client: httpx.AsyncClient, publisher: Publisher,
                 endpoints: EndpointCache, delays: list[float]) -> None:
        self._attempts = db[WEBHOOK_ATTEMPTS]
        self._client = client
        self._publisher = publisher
        self._endpoints = endpoints
        self._delays = list(delays)

    async def attempt(self, note: StatusChanged, endpoint: Endpoint, attempt: int) -> Outcome:
        """POST ``note`` to ``endpoint`` once, then record and follow up the answer."""
        msg_id = webhook_id(note.event_id, endpoint.id)
        body = payload(note)
        at = utcnow()
        headers = signed_headers(endpoint.secret, msg_id, at, body)
        status: int | None = None
        error: str | None = None
        retry_after: float | None = None
        started = time.perf_counter()
        try:
            response = await self._client.post(endpoint.url, content=body, headers=headers)
            status = response.status_code
            if status in RETRY_AFTER_STATUSES:
                retry_after = retry_after_seconds(response.headers.get("retry-after"), utcnow())
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        elapsed = time.perf_counter() - started
        LATENCY.observe(elapsed)

        outcome: Outcome
        if status is not None and 200 <= status < 300:
            outcome = "delivered"
        elif status == 410:
            outcome, error = "failed", "endpoint_gone: disabled"
            await self._endpoints.disable(endpoint, "410 Gone")
            log.warning("endpoint answered 410; disabled", extra={"endpoint_id": endpoint.id})
        else:
            delay = next_delay(self._delays, attempt, retry_after)
            if delay is None:
                outcome = "failed"
            else:
                outcome = "retrying"
                job = DeliveryJob(notification=note, endpoint_id=endpoint.id, attempt=attempt + 1)
                await self._publisher.delay(job, topology.FANOUT_DELIVERY_QUEUE, delay,
                                            message_id=f"{msg_id}:{attempt + 1}")
            if error is None:
                error = f"HTTP {status}"
        ATTEMPTS.labels(outcome).inc()
        await self._record(note, endpoint, msg_id, attempt, at, status, round(elapsed * 1000),
                           error, outcome)
        return outcome

    async def _record(self, note: StatusChanged, endpoint: Endpoint, msg_id: str, attempt: int,
                      at: datetime, status: int | None, latency_ms: int, error: str | None,
                      outcome: Outcome) -> None:
        doc: Document = {
            "_id": new_id("wa_"), "endpoint_id": endpoint.id, "tenant_id": note.tenant_id,
            "message_id": note.message_id, "event_id": note.event_id, "event_type": note.event_type,
            "webhook_id": msg_id, "attempt": attempt, "at": at, "status_code": status,
            "latency_ms": latency_ms, "error": error, "outcome": outcome,
        }
        try:
            await self._attempts.insert_one(doc)
        except Exception as exc:  # the attempt happened; losing its record must not redo it
            log.error("attempt not recorded", extra={"webhook_id": msg_id, "attempt": attempt,
                                                     "outcome": outcome, "error": repr(exc)})
        log.info("webhook attempt", extra={"webhook_id": msg_id, "endpoint_id": endpoint.id,
                                           "attempt": attempt, "status_code": status,
                                           "outcome": outcome})
