"""What every service shares at run time: one Mongo client, one broker, health routes, the server.

``build_app`` makes a Litestar app whose lifespan connects MongoDB and RabbitMQ, declares the topology and
on shutdown stops the broker gracefully (in-flight handlers finish, unacked messages go back to their
queue) before closing MongoDB.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import msgspec
import uvicorn
from faststream.rabbit import RabbitBroker
from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware
from litestar import Litestar, get
from litestar.enums import ScopeType
from litestar.response import Response
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from . import logs, telemetry
from .broker import Publisher, declare_topology, make_broker, set_queue_type
from .errors import EXCEPTION_HANDLERS, ApiError
from .mongo import Document, ensure_indexes, make_client, ping
from .queues import ConsumeMetricsMiddleware, monitor_for
from .settings import CommonSettings
from .uncancellable import finish_detached

log = logging.getLogger(__name__)

Hook = Callable[["Runtime"], Awaitable[None]]


@dataclass
class Runtime:
    """The connected clients of one service process, created in the lifespan."""

    settings: CommonSettings
    broker: RabbitBroker
    mongo: AsyncMongoClient[Document] | None = None
    publisher: Publisher | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def db(self) -> AsyncDatabase[Document]:
        assert self.mongo is not None, "runtime not started"
        return self.mongo[self.settings.mongodb_database]


def new_broker(settings: CommonSettings) -> RabbitBroker:
    """The service's broker, traced and measured; subscribers are attached before the app starts.

    Also fixes the queue type (``AMQP_QUEUE_TYPE``) the service's queues are declared with.
    """
    set_queue_type(settings.amqp_queue_type)
    # The telemetry middleware opens the consumer span; the metrics middleware runs inside it. With
    # tracing off (``configure_observability`` runs first) there is no span to open or context to
    # carry, and the middleware would still cost about 0.12 ms of CPU per publish and consume.
    middlewares: list[Any] = [ConsumeMetricsMiddleware]
    if telemetry.enabled():
        middlewares.insert(0, RabbitTelemetryMiddleware())
    return make_broker(settings.amqp_url, prefetch=settings.prefetch,
                       graceful_timeout=settings.shutdown_timeout, name=settings.service_name,
                       middlewares=middlewares)


def build_app(
    runtime: Runtime,
    *,
    route_handlers: Sequence[Any] = (),
    collections: Sequence[str] = (),
    delays: dict[str, list[float]] | None = None,
    on_start: Sequence[Hook] = (),
    on_stop: Sequence[Hook] = (),
    start_broker: bool = True,
    **litestar_kwargs: Any,
) -> Litestar:
    """A Litestar app with ``/healthz``, ``/readyz`` and ``/metrics`` plus the service's routes.

    The lifespan also measures the queues the service consumes (``postwire_platform.queues``) and,
    when tracing is on, every request gets a server span.
    """
    settings = runtime.settings

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        runtime.mongo = make_client(settings.mongodb_url)
        try:
            await ensure_indexes(runtime.db, list(collections))
            try:
                await runtime.broker.connect()
                await declare_topology(runtime.broker, delays)
            except Exception as exc:
                raise RuntimeError(
                    f"cannot connect to RabbitMQ at {_redact(settings.amqp_url)} (AMQP_URL): {exc}"
                ) from exc
            runtime.publisher = Publisher(runtime.broker)
            for hook in on_start:
                await hook(runtime)
            if start_broker:
                await runtime.broker.start()
            monitor.start()
            log.info("started", extra={"port": settings.http_port})
            yield
        finally:
            log.info("stopping: finishing in-flight messages")
            grace = settings.shutdown_timeout + 5
            await _bounded(monitor.stop(), 10, "queue monitor")
            for hook in on_stop:
                await _bounded(hook(runtime), grace, "stop hook")
            await _bounded(runtime.broker.stop(), grace, "RabbitMQ broker")
            await _bounded(finish_detached(grace), grace + 1, "provider calls in flight")
            await _bounded(runtime.mongo.close(), 10, "MongoDB client")

    @get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", include_in_schema=False)
    async def readyz() -> Response[dict[str, Any]]:
        broker_ok, mongo_ok = await asyncio.gather(_broker_ready(runtime.broker),
                                                   _mongo_ready(runtime))
        ok = broker_ok and mongo_ok
        body = {"status": "ready" if ok else "not_ready", "broker": broker_ok, "mongodb": mongo_ok}
        return Response(body, status_code=200 if ok else 503)

    @get("/metrics", include_in_schema=False)
    async def metrics() -> Response[bytes]:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    monitor = monitor_for(runtime.broker, delays, interval=settings.queue_metrics_interval)
    middleware = [body_limit(settings.max_body_bytes), *litestar_kwargs.pop("middleware", [])]
    litestar_kwargs.setdefault("request_max_body_size", settings.max_body_bytes)  # chunked bodies
    if telemetry.enabled():
        middleware.insert(0, telemetry.server_middleware())
    app = Litestar(
        route_handlers=[healthz, readyz, metrics, *route_handlers],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=middleware,
        **litestar_kwargs,
    )
    app.state.runtime = runtime
    return app


def body_limit(max_bytes: int) -> Callable[[ASGIApp], ASGIApp]:
    """Middleware refusing a request whose ``Content-Length`` is over ``max_bytes`` with 413 in the
    error format, before authentication or routing, and without keeping any of the body (a body
    without a length is cut off by Litestar's ``request_max_body_size`` as it is read)."""
    refusal = msgspec.json.encode(ApiError(
        413, "payload_too_large", f"the request body is larger than {max_bytes} bytes").body())
    start: HTTPResponseStartEvent = {
        "type": "http.response.start", "status": 413,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(refusal)).encode())]}
    body: HTTPResponseBodyEvent = {"type": "http.response.body", "body": refusal, "more_body": False}

    def factory(app: ASGIApp) -> ASGIApp:
        async def limited(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == ScopeType.HTTP:
                length = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
                if length.isdigit() and int(length) > max_bytes:
                    await send(start)
                    await send(body)
                    await _discard(receive, limit=8 * max_bytes)
                    return
            await app(scope, receive, send)
        return limited

    return factory


async def _discard(receive: Receive, limit: int) -> None:
    """Read and drop what the client is still sending (up to ``limit`` bytes), so it reads our answer
    instead of a reset connection; past the limit the server closes the connection."""
    seen = 0
    while seen <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _bounded(step: Awaitable[None], seconds: float, what: str) -> None:
    """Await a shutdown step, but never hang the process on it.

    aio-pika's close can wait forever on a connection that was cut and re-established; past the
    grace period we exit anyway: unacked deliveries go back to their queues when the socket closes.
    The step runs as a task that is waited for, not awaited under a timeout: a step that swallows its
    cancellation (as a close deep in a client library may) would hold a timeout forever, and did hang
    a test's teardown. Its exceptions still propagate.
    """
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()  # not awaited: it may never finish
        log.error("%s did not stop within %.0fs; exiting anyway", what, seconds)
        return
    task.result()


async def _broker_ready(broker: RabbitBroker) -> bool:
    try:
        return bool(await broker.ping(timeout=2.0))
    except Exception:  # readiness reports, it does not raise
        return False


async def _mongo_ready(runtime: Runtime) -> bool:
    if runtime.mongo is None:
        return False
    try:
        async with asyncio.timeout(2.0):
            return await ping(runtime.mongo)
    except TimeoutError:
        return False


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def serve(app: Litestar, settings: CommonSettings) -> None:
    """Run the app until SIGTERM/SIGINT, then shut down gracefully (buffered spans are flushed)."""
    configure_observability(settings)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        # measured (docs/performance.md): server CPU per request 0.24 ms with h11 on asyncio,
        # 0.12 ms with httptools, 0.08 ms with httptools on uvloop; uvloop also runs the service's
        # consumers, publishers and database client
        http="httptools",
        loop="uvloop",
        lifespan="on",
        timeout_keep_alive=settings.http_keep_alive_seconds,
        timeout_graceful_shutdown=int(settings.shutdown_timeout),
    )
    app.on_startup.append(freeze_startup_heap)  # runs after the lifespan's startup
    server = uvicorn.Server(config)
    try:
        server.run()
    finally:
        telemetry.shutdown()
    if not server.started:
        raise SystemExit(1)


def freeze_startup_heap() -> None:
    """Leave what the process built to start (modules, the app, its clients) out of every later
    garbage collection: collect once, then move the survivors to the permanent generation
    (``gc.freeze``). Without it each full collection walks all of them again: under load, pauses
    of 70 to 240 ms in reporting, webhook-fanout and sms-dispatcher (docs/performance.md, change
    25). Objects made later are collected as before."""
    gc.collect()
    gc.freeze()


def configure_observability(settings: CommonSettings) -> None:
    """JSON logs, and tracing when the ``OTEL_*`` variables ask; before the app is built, so its
    middleware and clients are instrumented."""
    logs.configure(settings.service_name, settings.log_level, json=settings.log_json)
    telemetry.setup(settings.service_name)
