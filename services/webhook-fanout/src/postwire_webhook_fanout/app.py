"""webhook-fanout: notifications become signed deliveries to the tenants' endpoints.

Three subscribers:
- ``webhook-fanout.notify``: each notification (any kind with a payload builder, see ``events``;
  each change of a ``StatusChanges`` batch as one of its own) becomes one first attempt per
  interested endpoint: made right here for an endpoint that answers quickly (at most
  ``WEBHOOK_INLINE_ATTEMPTS`` at once), a delivery job for every other, so a slow endpoint never
  holds up the fan-out for long.
- ``webhook-fanout.deliver``: jobs (first attempts, retries back from the delay queues, jobs set aside)
  make at most one attempt each; consumer slots are shared by all endpoints and guarded per endpoint
  (``gate``).
- ``webhook-fanout.commands``: the gateway's replays and test events.

A message that cannot be handled because MongoDB or RabbitMQ is unreachable is nacked back after a
short pause; as an endpoint may then see an attempt twice, receivers deduplicate on ``webhook-id``.
A malformed message is dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
from typing import NoReturn

import msgspec
from faststream.exceptions import NackMessage, RejectMessage
from litestar import Litestar

from postwire_contracts import topology
from postwire_contracts.webhooks import command_decoder
from postwire_platform import telemetry
from postwire_platform.broker import raw_body, work_queue
from postwire_platform.clock import Clock, utcnow
from postwire_platform.mongo import WEBHOOK_ATTEMPTS, WEBHOOK_ENDPOINTS
from postwire_platform.secrets_at_rest import Keyring
from postwire_platform.service import Runtime, build_app, new_broker
from postwire_platform.webhook_targets import Resolver, system_resolver

from .attempts import AttemptLog
from .commands import run_command
from .delivery import Deliverer
from .endpoints import EndpointCache
from .events import Notified, notified
from .gate import EndpointGate
from .jobs import decode_job
from .settings import Settings, validate
from .transport import make_client

log = logging.getLogger(__name__)

DELIVERER = "deliverer"
ATTEMPTS = "attempts"
CLIENT = "http_client"
SWEEPER = "attempt_sweeper"


def create_app(settings: Settings, *, clock: Clock | None = None,
               resolver: Resolver = system_resolver) -> Litestar:
    """The webhook-fanout app; raises ``SettingsError`` for bad settings (``SECRET_KEYS`` included)."""
    validate(settings)
    now = clock or utcnow
    keyring = Keyring(settings.secret_keys)
    runtime = Runtime(settings=settings, broker=new_broker(settings))
    notifications = runtime.broker.subscriber(work_queue(topology.FANOUT_QUEUE), decoder=raw_body)
    deliveries = runtime.broker.subscriber(work_queue(topology.FANOUT_DELIVERY_QUEUE), decoder=raw_body)
    commands = runtime.broker.subscriber(work_queue(topology.FANOUT_COMMAND_QUEUE), decoder=raw_body)

    async def hand_back(what: str, exc: BaseException) -> NoReturn:
        log.warning("cannot handle %s now; handing it back", what, extra={"error": repr(exc)})
        await asyncio.sleep(settings.retry_pause)
        raise NackMessage(requeue=True) from exc

    def dead_letter(what: str, exc: BaseException) -> NoReturn:
        log.error("malformed %s; dead-lettering it", what, extra={"error": repr(exc)})
        raise RejectMessage(requeue=False) from exc

    @notifications
    async def on_notification(body: bytes) -> None:
        try:
            events = notified(body)
        except msgspec.MsgspecError as exc:
            dead_letter("notification", exc)
        if not events:
            return
        deliverer: Deliverer = runtime.extras[DELIVERER]
        try:
            if len(events) == 1 and events[0].traceparent is None:
                await deliverer.fan_out(events[0].event)
            else:
                await fan_out_all(deliverer, events)
        except Exception as exc:
            await hand_back("notification", exc)

    @deliveries
    async def on_delivery(body: bytes) -> None:
        try:
            job = decode_job(body)
        except msgspec.MsgspecError as exc:
            dead_letter("delivery job", exc)
        if job is None:
            return
        deliverer: Deliverer = runtime.extras[DELIVERER]
        try:
            await deliverer.handle(job)
        except Exception as exc:
            await hand_back("delivery job", exc)

    @commands
    async def on_command(body: bytes) -> None:
        try:
            command = command_decoder.decode(body)
        except msgspec.MsgspecError as exc:
            dead_letter("webhook command", exc)
        deliverer: Deliverer = runtime.extras[DELIVERER]
        try:
            await run_command(command, deliverer, runtime.extras[ATTEMPTS])
        except Exception as exc:
            await hand_back("webhook command", exc)

    batched = asyncio.Semaphore(max(1, settings.prefetch))

    async def fan_out_all(deliverer: Deliverer, events: list[Notified]) -> None:
        """A batch's events, each in its message's trace; if any fails, the whole batch is handed
        back (its other events' first attempts may then be made twice, as documented).

        At most PREFETCH events of batches are fanned out at once, as many as notifications of one
        event each would be: unbounded, a backlog of batches of hundreds would put thousands of
        fan-outs in flight. (A batch's events still arrive together, so more of them find the
        endpoint's slots taken and go through a delivery job: docs/performance.md, change 30.)
        """

        async def one(item: Notified) -> None:
            async with batched:
                if item.traceparent is None:
                    await deliverer.fan_out(item.event)
                    return
                with telemetry.message_trace("webhook-fanout notification", item.traceparent):
                    await deliverer.fan_out(item.event)

        outcomes = await asyncio.gather(*(one(item) for item in events), return_exceptions=True)
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:
            log.warning("%d of %d events of a notification failed", len(failed), len(events))
            raise failed[0]

    async def start(rt: Runtime) -> None:
        assert rt.publisher is not None
        client = make_client(timeout=settings.webhook_timeout,
                             allow_private=settings.webhook_allow_private,
                             max_connections=max(100, settings.prefetch * 2), resolver=resolver)
        if settings.webhook_allow_private:
            log.warning("WEBHOOK_ALLOW_PRIVATE=true: webhooks may reach private and loopback "
                        "addresses")
        attempts = AttemptLog(rt.db, window=settings.attempt_flush_seconds)
        gate = EndpointGate(limit=settings.webhook_endpoint_concurrency,
                            waiters=settings.webhook_busy_waiters,
                            threshold=settings.webhook_breaker_threshold,
                            cooldown=settings.webhook_breaker_cooldown)
        endpoints = EndpointCache(rt.db, keyring, settings.endpoint_cache_seconds)
        rt.extras[SWEEPER] = asyncio.create_task(sweep_attempts(attempts),
                                                 name="webhook-attempt-sweeper")
        rt.extras.update({
            CLIENT: client, ATTEMPTS: attempts,
            DELIVERER: Deliverer(settings, client=client, publisher=rt.publisher,
                                 endpoints=endpoints, gate=gate, attempts=attempts,
                                 clock=now),
        })

    async def sweep_attempts(attempts: AttemptLog) -> None:
        """Delete expired attempt records every WEBHOOK_ATTEMPT_SWEEP_SECONDS (the retention)."""
        while True:
            await asyncio.sleep(settings.webhook_attempt_sweep_seconds)
            try:
                deleted = await attempts.expire(now())
            except Exception:  # the database is away: the next round deletes them
                log.warning("expired webhook attempts not deleted this round", exc_info=True)
                continue
            if deleted:
                log.info("deleted %d expired webhook attempt records", deleted)

    async def stop(rt: Runtime) -> None:
        sweeper: asyncio.Task[None] | None = rt.extras.get(SWEEPER)
        if sweeper is not None:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
        # Stop consuming and let in-flight attempts finish before the HTTP client closes.
        await asyncio.gather(notifications.stop(), deliveries.stop(), commands.stop())
        attempts: AttemptLog | None = rt.extras.get(ATTEMPTS)
        if attempts is not None:
            await attempts.close()
        client = rt.extras.get(CLIENT)
        if client is not None:
            await client.aclose()

    return build_app(runtime, collections=[WEBHOOK_ENDPOINTS, WEBHOOK_ATTEMPTS],
                     delays={topology.FANOUT_DELIVERY_QUEUE: settings.declared_delays()},
                     on_start=[start], on_stop=[stop])
