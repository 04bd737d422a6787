"""webhook-fanout: every ``StatusChanged`` with a customer event type goes to the tenant's endpoints.

Two subscribers: ``webhook-fanout.notify`` (first attempts, one per interested endpoint, concurrently)
and ``webhook-fanout.deliver`` (later attempts, returning from the delay queues). A notification that
cannot be handled because MongoDB or RabbitMQ is unreachable is nacked back after a short pause; as
endpoints may then see an attempt twice, they deduplicate on the stable ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import NoReturn

import httpx
from faststream.exceptions import NackMessage
from litestar import Litestar

from postwire_contracts import topology
from postwire_contracts.messages import StatusChanged
from postwire_platform.broker import work_queue
from postwire_platform.mongo import WEBHOOK_ATTEMPTS, WEBHOOK_ENDPOINTS
from postwire_platform.service import Runtime, build_app, new_broker

from .delivery import Deliverer
from .endpoints import EndpointCache
from .jobs import DeliveryJob
from .settings import Settings

log = logging.getLogger(__name__)

DELIVERER = "deliverer"
CLIENT = "http_client"


def create_app(settings: Settings) -> Litestar:
    """The webhook-fanout app: health routes, the notification and the retry subscribers."""
    runtime = Runtime(settings=settings, broker=new_broker(settings))
    notifications = runtime.broker.subscriber(work_queue(topology.FANOUT_QUEUE))
    retries = runtime.broker.subscriber(work_queue(topology.FANOUT_DELIVERY_QUEUE))

    async def hand_back(what: str, exc: BaseException) -> NoReturn:
        log.warning("cannot handle %s now; handing it back", what, extra={"error": repr(exc)})
        await asyncio.sleep(settings.retry_pause)
        raise NackMessage(requeue=True) from exc

    @notifications
    async def on_notification(note: StatusChanged) -> None:
        if note.event_type is None:
            return
        deliverer: Deliverer = runtime.extras[DELIVERER]
        cache: EndpointCache = runtime.extras["endpoints"]
        try:
            endpoints = await cache.for_tenant(note.tenant_id)
        except Exception as exc:
            await hand_back("notification", exc)
        targets = [e for e in endpoints if e.wants(note.event_type)]
        results = await asyncio.gather(*(deliverer.attempt(note, e, 1) for e in targets),
                                       return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await hand_back("notification", failures[0])

    @retries
    async def on_retry(job: DeliveryJob) -> None:
        deliverer: Deliverer = runtime.extras[DELIVERER]
        cache: EndpointCache = runtime.extras["endpoints"]
        note = job.notification
        try:
            endpoint = await cache.find(note.tenant_id, job.endpoint_id)
        except Exception as exc:
            await hand_back("retry", exc)
        if endpoint is None:
            log.info("endpoint gone or disabled; retry dropped",
                     extra={"endpoint_id": job.endpoint_id, "event_id": note.event_id})
            return
        try:
            await deliverer.attempt(note, endpoint, job.attempt)
        except Exception as exc:
            await hand_back("retry", exc)

    async def start(rt: Runtime) -> None:
        assert rt.publisher is not None
        if not settings.webhook_allow_private:
            log.warning("WEBHOOK_ALLOW_PRIVATE=false is not enforced yet (no SSRF guard)")
        client = httpx.AsyncClient(timeout=settings.webhook_timeout, follow_redirects=False,
                                   headers={"user-agent": "Postwire-Webhooks/1.0"})
        cache = EndpointCache(rt.db, settings.endpoint_cache_seconds)
        rt.extras.update({
            CLIENT: client, "endpoints": cache,
            DELIVERER: Deliverer(rt.db, client, rt.publisher, cache, settings.webhook_retry_delays),
        })

    async def stop(rt: Runtime) -> None:
        # Stop consuming and let in-flight attempts finish before the HTTP client closes.
        await asyncio.gather(notifications.stop(), retries.stop())
        client: httpx.AsyncClient | None = rt.extras.get(CLIENT)
        if client is not None:
            await client.aclose()

    return build_app(runtime, collections=[WEBHOOK_ENDPOINTS, WEBHOOK_ATTEMPTS],
                     delays={topology.FANOUT_DELIVERY_QUEUE: settings.webhook_retry_delays},
                     on_start=[start], on_stop=[stop])
