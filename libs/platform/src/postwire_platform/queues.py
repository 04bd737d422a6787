"""Queue metrics: depth, consumers and dead letters by passive declare; consumer lag per delivery.

Each service watches the queues it consumes, their dead-letter queues and the delay queues it declared,
so the series come from the service that owns them (several replicas report the same value: the
dashboards take ``max by (queue)``). A passive declare is plain AMQP, so this needs neither the
management plugin nor its credentials. KEDA scales the consumers on the same numbers, read by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
from faststream import BaseMiddleware
from faststream.message import StreamMessage
from faststream.rabbit import RabbitBroker

from postwire_contracts import topology

from . import telemetry
from .broker import PUBLISHED_HEADER
from .metrics import CONSUMER_LAG, DEAD_LETTER_MESSAGES, QUEUE_CONSUMERS, QUEUE_MESSAGES

log = logging.getLogger(__name__)


class QueueDepth(msgspec.Struct, frozen=True):
    """What a passive declare tells about one queue."""

    name: str
    messages: int
    consumers: int


class QueueMonitor:
    """Polls the depth of ``queues`` and ``dead`` (dead-letter queues) every ``interval`` seconds."""

    def __init__(self, broker: RabbitBroker, queues: Sequence[str], dead: Sequence[str], *,
                 interval: float) -> None:
        self._broker = broker
        self._queues = list(dict.fromkeys(queues))
        self._dead = list(dict.fromkeys(dead))
        self._interval = interval
        self._channel: Any = None
        self._task: asyncio.Task[None] | None = None

    @property
    def watched(self) -> list[str]:
        """Every queue this monitor reports on."""
        return [*self._queues, *self._dead]

    async def poll(self) -> list[QueueDepth]:
        """One round: declare each queue passively and set the gauges; skips queues that are missing."""
        depths: list[QueueDepth] = []
        for name in self.watched:
            depth = await self._depth(name)
            if depth is None:
                continue
            depths.append(depth)
            if name in self._dead:
                DEAD_LETTER_MESSAGES.labels(queue=name).set(depth.messages)
            else:
                QUEUE_MESSAGES.labels(queue=name).set(depth.messages)
            QUEUE_CONSUMERS.labels(queue=name).set(depth.consumers)
        return depths

    async def _depth(self, name: str) -> QueueDepth | None:
        connection = getattr(self._broker, "_connection", None)
        if connection is None:
            return None
        try:
            if self._channel is None or self._channel.is_closed:
                # Its own channel: a passive declare of a missing queue closes the channel it ran on.
                self._channel = await connection.channel()
            queue = await self._channel.declare_queue(name, passive=True)
        except Exception as exc:  # a missing queue or a broker outage: report it, keep polling
            log.debug("queue %s not measured: %r", name, exc)
            self._channel = None
            return None
        result = queue.declaration_result
        return QueueDepth(name=name, messages=int(result.message_count or 0),
                          consumers=int(result.consumer_count or 0))

    def start(self) -> None:
        """Poll in the background until ``stop``."""
        if self._task is None and self.watched and self._interval > 0:
            self._task = asyncio.create_task(self._run(), name="queue-monitor")

    async def stop(self) -> None:
        """Stop polling and close the monitor's channel."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        channel, self._channel = self._channel, None
        if channel is not None and not channel.is_closed:
            with contextlib.suppress(Exception):
                await channel.close()

    async def _run(self) -> None:
        while True:
            try:
                await self.poll()
            except Exception:  # the monitor must outlive any failure; next round retries
                log.warning("queue metrics round failed", exc_info=True)
            await asyncio.sleep(self._interval)


def monitor_for(broker: RabbitBroker, delays: dict[str, list[float]] | None, *,
                interval: float) -> QueueMonitor:
    """The monitor of the queues ``broker``'s subscribers consume, their dead letters and delays."""
    queues = [getattr(sub, "queue", None) for sub in broker.subscribers]
    consumed = [str(queue.name) for queue in queues if queue is not None]
    delayed = [topology.delay_queue(target, seconds)
               for target, steps in (delays or {}).items() for seconds in steps]
    dead = [topology.dead_letter_queue(name) for name in consumed]
    return QueueMonitor(broker, [*consumed, *delayed], dead, interval=interval)


class _Peek(msgspec.Struct):
    """The ids a broker message may carry; everything else (bodies) is ignored."""

    message_id: str | None = None
    event_id: str | None = None
    tenant_id: str | None = None
    channel: str | None = None
    status: str | None = None
    event_type: str | None = None
    notification: _Peek | None = None


_peek = msgspec.json.Decoder(_Peek)


def waited(raw: Any, now: datetime) -> float | None:
    """Seconds a delivery waited in its queue: since its publish, or since it left a delay queue."""
    headers = getattr(raw, "headers", None) or {}
    since: datetime | None = getattr(raw, "timestamp", None)
    published = headers.get(PUBLISHED_HEADER)
    if isinstance(published, int | float) and not isinstance(published, bool):
        since = datetime.fromtimestamp(published / 1000, UTC)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        # The most recent dead-lettering comes first; from a delay queue, it happens when the delay
        # ends, which is when this message started to wait in its work queue again.
        died = deaths[0].get("time")
        if isinstance(died, datetime):
            died = died if died.tzinfo else died.replace(tzinfo=UTC)
            since = died if since is None or died > since else since
    if since is None:
        return None
    return max(0.0, (now - since).total_seconds())


class ConsumeMetricsMiddleware(BaseMiddleware):
    """Observes each delivery's consumer lag and tags the consumer span with the message's ids."""

    async def consume_scope(self, call_next: Callable[[StreamMessage[Any]], Awaitable[Any]],
                            msg: StreamMessage[Any]) -> Any:
        handler = self.context.get_local("handler_")
        queue = getattr(getattr(handler, "queue", None), "name", None)
        if queue:
            lag = waited(msg.raw_message, datetime.now(UTC))
            if lag is not None:
                CONSUMER_LAG.labels(queue=queue).observe(lag)
        if telemetry.enabled():
            with contextlib.suppress(msgspec.DecodeError):  # not JSON: the handler reports it
                telemetry.annotate(_peek.decode(msg.body))
        return await call_next(msg)
