"""Handling one delivery job: order, isolation, the attempt, its record, and what comes next.

2xx: delivered. 410: the endpoint is disabled (outcome ``failed``). Anything else, or no answer: the
next attempt goes to a delay queue of ``webhook-fanout.deliver`` (outcome ``retrying``) until the
schedule is used up; the last record then says ``failed`` and the delivery waits there, parked, for a
replay (``webhook_attempts`` keeps the event's exact body). Every attempt is recorded, including those
skipped while the endpoint's circuit breaker is open. Jobs set aside (endpoint at its concurrency
limit, or an earlier event of the message not attempted yet) go through the short defer queue and are
not attempts. A job whose earlier event is being attempted in this process at that moment (the usual
case: a receipt right behind its "sent") first waits for it in memory, up to
``WEBHOOK_ORDER_INLINE_WAIT``, instead of a round through the defer queue.

A first attempt to a quick endpoint (its last attempt answered, without failure, faster than
``WEBHOOK_BUSY_WAIT``, and a slot free) is made straight from the notification, not through a job
published to ``webhook-fanout.deliver`` and consumed again: that round trip cost about a quarter of the
service's CPU per webhook. At most ``WEBHOOK_INLINE_ATTEMPTS`` are made that way at once, so an
endpoint that turns slow can hold only that many notification slots, for at most one timeout; every
other first attempt, and every retry, goes through the job queue as before. The notification is
acknowledged after its inline attempts are made and recorded; if it is handed back, they are made
again (same ``webhook-id``), as a job's would be.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import msgspec
from prometheus_client import Counter

from postwire_contracts import topology
from postwire_contracts.webhooks import webhook_id
from postwire_platform import metrics
from postwire_platform.broker import Publisher
from postwire_platform.clock import Clock, utcnow
from postwire_platform.webhook_targets import UnsafeTarget

from .attempts import Attempt, AttemptLog, Outcome, record
from .endpoints import Endpoint, EndpointCache
from .events import WebhookEvent
from .gate import EndpointGate
from .jobs import DeliveryJob
from .schedule import RETRY_AFTER_STATUSES, Delay, next_delay, retry_after_seconds
from .settings import Settings
from .signing import signed_headers

log = logging.getLogger(__name__)

ATTEMPTS = metrics.WEBHOOK_ATTEMPTS
LATENCY = metrics.WEBHOOK_LATENCY
SET_ASIDE = Counter("postwire_webhook_set_aside", "Jobs put back without an attempt", ["reason"])
FIRST_ATTEMPTS = Counter("postwire_webhook_first_attempts",
                         "First attempts by how they were started: from the notification or a job",
                         ["path"])


@dataclass(frozen=True)
class _Answer:
    status: int | None
    error: str | None
    retry_after: float | None
    latency_ms: int

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def endpoint_failed(self) -> bool:
        """What counts against the circuit breaker: no answer or a server error."""
        return self.status is None or self.status >= 500


class Deliverer:
    """Fans events out into jobs and runs jobs; one per process, shared by the subscribers."""

    def __init__(self, settings: Settings, *, client: httpx.AsyncClient, publisher: Publisher,
                 endpoints: EndpointCache, gate: EndpointGate, attempts: AttemptLog,
                 clock: Clock = utcnow, rng: random.Random | None = None) -> None:
        self._settings = settings
        self._client = client
        self._publisher = publisher
        self._endpoints = endpoints
        self._gate = gate
        self._attempts = attempts
        self._clock = clock
        self._rng = rng or random.Random()
        self._delays = list(settings.webhook_retry_delays)
        self._declared = settings.declared_delays()
        self._retention = timedelta(days=settings.webhook_attempt_retention_days)
        self._inline = 0
        """First attempts being made from notifications right now."""

    # fan-out ---------------------------------------------------------------------------------------
    async def fan_out(self, event: WebhookEvent) -> int:
        """Make or queue a first attempt for every enabled endpoint of the tenant that wants
        ``event``: quick endpoints are attempted here and now, the others get a job."""
        endpoints = await self._endpoints.for_tenant(event.tenant_id)
        targets = [e for e in endpoints if e.wants(event.event_type, live=event.live)]
        inline = [e for e in targets if self._take_inline_slot(e)]
        now = {e.id for e in inline}
        try:
            for endpoint in targets:
                if endpoint.id not in now:
                    FIRST_ATTEMPTS.labels("job").inc()
                    await self.enqueue(DeliveryJob(event=event, endpoint_id=endpoint.id))
            outcomes = await asyncio.gather(
                *(self.handle(DeliveryJob(event=event, endpoint_id=e.id), inline=True)
                  for e in inline), return_exceptions=True)
        finally:
            self._inline -= len(inline)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return len(targets)

    def _take_inline_slot(self, endpoint: Endpoint) -> bool:
        if (self._inline >= self._settings.webhook_inline_attempts
                or endpoint.secret_error is not None
                or not self._gate.is_quick(endpoint.id, self._settings.webhook_busy_wait)):
            return False
        self._inline += 1
        return True

    async def enqueue(self, job: DeliveryJob) -> None:
        """Publish ``job`` to ``webhook-fanout.deliver`` now."""
        await self._publisher.publish(job, topology.FANOUT_DELIVERY_KEY,
                                      message_id=self._message_id(job))

    # one job ---------------------------------------------------------------------------------------
    async def handle(self, job: DeliveryJob, *, inline: bool = False) -> None:
        """Run ``job``: make its attempt (or set it aside) and record and follow up the outcome.
        ``inline``: a first attempt made from the notification; if the endpoint's slots are taken
        by then, the job is queued instead of waiting."""
        event = job.event
        endpoint = await self._endpoints.find(event.tenant_id, job.endpoint_id)
        if endpoint is None:
            await self._endpoint_gone(job)
            return
        if await self._waits_for_order(job, endpoint):
            return
        if endpoint.secret_error is not None:
            await self._follow_up(job, endpoint, _Answer(None, endpoint.secret_error, None, 0),
                                  self._clock())
            return
        admission = await self._gate.acquire(endpoint.id, force=self._is_last(job),
                                             wait=0.0 if inline else self._settings.webhook_busy_wait)
        if admission == "busy":
            if inline:  # the slot went meanwhile: the job queue takes the attempt from here
                FIRST_ATTEMPTS.labels("job").inc()
                await self.enqueue(job)
                return
            SET_ASIDE.labels("endpoint_busy").inc()
            await self._set_aside(job, job.order_until)
            return
        if inline:
            FIRST_ATTEMPTS.labels("inline").inc()
        at = self._clock()
        if admission == "open":
            answer = _Answer(None, "circuit_open: the endpoint keeps failing; attempt skipped",
                             None, 0)
        else:
            failed, latency = True, None
            try:
                answer = await self._post(job, endpoint, at)
                failed, latency = answer.endpoint_failed, answer.latency_ms / 1000
            finally:
                self._gate.release(endpoint.id, failed=failed, latency=latency)
        await self._follow_up(job, endpoint, answer, at)

    async def _post(self, job: DeliveryJob, endpoint: Endpoint, at: datetime) -> _Answer:
        body = bytes(job.event.body)
        msg_id = webhook_id(job.event.event_id, endpoint.id)
        headers = signed_headers(endpoint.secrets_at(at), msg_id, at, body)
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
        except UnsafeTarget as exc:  # the host now resolves somewhere it must not go
            error = f"{exc.code}: {exc}"[:500]
        elapsed = time.perf_counter() - started
        LATENCY.observe(elapsed)
        return _Answer(status, error, retry_after, round(elapsed * 1000))

    async def _follow_up(self, job: DeliveryJob, endpoint: Endpoint, answer: _Answer,
                         at: datetime) -> None:
        outcome: Outcome
        error = answer.error
        if answer.ok:
            outcome = "delivered"
        elif answer.status == 410:
            outcome, error = "failed", "endpoint_gone: disabled"
            await self._endpoints.disable(endpoint, "410 Gone")
            log.warning("endpoint answered 410; disabled", extra={"endpoint_id": endpoint.id})
        else:
            delay = None if job.trigger == "test" else next_delay(
                self._delays, self._declared, job.attempt, answer.retry_after,
                jitter=self._settings.webhook_retry_jitter, rng=self._rng)
            if delay is None:
                outcome = "failed"
            else:
                outcome = "retrying"
                await self._delay(msgspec.structs.replace(job, attempt=job.attempt + 1,
                                                          set_aside=0), delay)
            if error is None:
                error = f"HTTP {answer.status}"
        await self._record(job, endpoint.id, Attempt(at, answer.status, answer.latency_ms, error,
                                                     outcome))

    # order -----------------------------------------------------------------------------------------
    async def _waits_for_order(self, job: DeliveryJob, endpoint: Endpoint) -> bool:
        """Set the job aside while an earlier event of its message has no attempt yet (bounded by
        ``WEBHOOK_ORDER_WAIT``). Only an event's own first attempt waits; retries and replays don't."""
        event = job.event
        if job.trigger != "event" or job.attempt != 1 or event.message_id is None:
            return False
        earlier = [t for t in event.after if endpoint.wants(t, live=event.live)]
        if not earlier:
            return False
        now = self._clock()
        until = job.order_until or now + timedelta(seconds=self._settings.webhook_order_wait)
        if now >= until:
            return False
        # usually the earlier event is being attempted here at this moment: wait for it in memory
        inline = min(self._settings.webhook_order_inline_wait, (until - now).total_seconds())
        if await self._attempts.wait_attempted(event, endpoint.id, earlier, inline):
            return False
        if set(earlier) <= await self._attempts.attempted_types(event, endpoint.id, earlier):
            return False
        SET_ASIDE.labels("order").inc()
        await self._set_aside(job, until)
        return True

    # helpers ---------------------------------------------------------------------------------------
    def _is_last(self, job: DeliveryJob) -> bool:
        return job.trigger == "test" or job.attempt > len(self._delays)

    async def _set_aside(self, job: DeliveryJob, order_until: datetime | None) -> None:
        later = msgspec.structs.replace(job, order_until=order_until, set_aside=job.set_aside + 1)
        await self._delay(later, Delay(self._settings.webhook_defer_seconds))

    async def _delay(self, job: DeliveryJob, delay: Delay) -> None:
        await self._publisher.delay(job, topology.FANOUT_DELIVERY_QUEUE, delay.queue,
                                    message_id=self._message_id(job), expiration=delay.expiration)

    async def _endpoint_gone(self, job: DeliveryJob) -> None:
        why = await self._endpoints.absence(job.event.tenant_id, job.endpoint_id)
        log.info("endpoint %s; delivery stopped", why,
                 extra={"endpoint_id": job.endpoint_id, "event_id": job.event.event_id})
        if why == "disabled":  # recorded as failed, so a replay after re-enabling finds it
            await self._record(job, job.endpoint_id,
                               Attempt(self._clock(), None, 0, "endpoint_disabled", "failed"))

    async def _record(self, job: DeliveryJob, endpoint_id: str, attempt: Attempt) -> None:
        msg_id = webhook_id(job.event.event_id, endpoint_id)
        ATTEMPTS.labels(attempt.outcome).inc()
        doc = record(job.event, endpoint_id=endpoint_id, webhook_id=msg_id,
                     attempt_no=job.attempt, trigger=job.trigger, run=job.run, attempt=attempt,
                     retention=self._retention)
        try:
            await self._attempts.write(doc)
        except Exception as exc:  # the attempt happened; losing its record must not redo it
            log.error("attempt not recorded", extra={"webhook_id": msg_id, "attempt": job.attempt,
                                                     "outcome": attempt.outcome,
                                                     "error": repr(exc)})
        log.info("webhook attempt", extra={"webhook_id": msg_id, "endpoint_id": endpoint_id,
                                           "attempt": job.attempt, "status_code": attempt.status_code,
                                           "outcome": attempt.outcome, "trigger": job.trigger})

    @staticmethod
    def _message_id(job: DeliveryJob) -> str:
        msg_id = webhook_id(job.event.event_id, job.endpoint_id)
        return f"{msg_id}:{job.run or job.trigger}:{job.attempt}:{job.set_aside}"
