"""RabbitMQ: the broker factory, the declared topology and a confirmed publisher.

Every service declares the whole topology at start-up (declarations are idempotent), so the gateway can
publish a send before the dispatcher that consumes it has ever started, and nothing is unroutable.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
from fast_depends.msgspec import MsgSpecSerializer
from faststream.rabbit import ExchangeType, RabbitBroker, RabbitExchange, RabbitQueue
from faststream.rabbit.schemas import Channel

from postwire_contracts import topology

log = logging.getLogger(__name__)

EXCHANGE = RabbitExchange(topology.EXCHANGE, type=ExchangeType.TOPIC, durable=True)
DEAD_EXCHANGE = RabbitExchange(topology.DEAD_LETTER_EXCHANGE, type=ExchangeType.DIRECT, durable=True)
RETRY_EXCHANGE = RabbitExchange(topology.RETRY_EXCHANGE, type=ExchangeType.DIRECT, durable=True)

BINDINGS: dict[str, str] = {
    topology.SMS_SEND_QUEUE: topology.SEND_SMS,
    topology.EMAIL_SEND_QUEUE: topology.SEND_EMAIL,
    topology.WHATSAPP_SEND_QUEUE: topology.SEND_WHATSAPP,
    topology.REPORTING_QUEUE: topology.EVENTS_PATTERN,
    topology.FANOUT_QUEUE: topology.NOTIFY_PATTERN,
    topology.FANOUT_DELIVERY_QUEUE: topology.FANOUT_DELIVERY_KEY,
}


class BrokerUnavailable(RuntimeError):
    """A publish was not confirmed by RabbitMQ: the caller must not report success."""


def make_broker(amqp_url: str, *, prefetch: int = 100, graceful_timeout: float = 15.0,
                name: str = "postwire", **kwargs: Any) -> RabbitBroker:
    """A broker that speaks msgspec, confirms every publish and limits unacked deliveries."""
    return RabbitBroker(
        amqp_url,
        serializer=MsgSpecSerializer(),
        graceful_timeout=graceful_timeout,
        default_channel=Channel(prefetch_count=prefetch, publisher_confirms=True,
                                on_return_raises=True),
        app_id=name,
        log_level=logging.DEBUG,
        **kwargs,
    )


def broker_connected(broker: RabbitBroker) -> bool:
    """False when the broker's (robust) connection is known to be down or was never opened.

    FastStream keeps aio-pika's ``RobustConnection`` in ``_connection``; its ``connected`` event is
    cleared while aio-pika reconnects, which is exactly "a publish now would fail".
    """
    connection = getattr(broker, "_connection", None)
    if connection is None:
        return False
    event = getattr(connection, "connected", None)
    return bool(event is not None and event.is_set())


def work_queue(name: str) -> RabbitQueue:
    """A durable work queue whose rejected messages go to its own dead-letter queue."""
    return RabbitQueue(
        name,
        durable=True,
        routing_key=BINDINGS[name],
        arguments={
            "x-dead-letter-exchange": topology.DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": topology.dead_letter_queue(name),
        },
    )


def dead_queue(name: str) -> RabbitQueue:
    return RabbitQueue(topology.dead_letter_queue(name), durable=True,
                       routing_key=topology.dead_letter_queue(name))


def delay_queue(target: str, seconds: float) -> RabbitQueue:
    """A queue that holds messages ``seconds`` and then dead-letters them straight into ``target``.

    RabbitMQ here has no delayed-message plugin: a per-queue TTL plus dead-lettering to the default
    exchange (routing key = the target queue's name) is the portable way to delay.
    """
    return RabbitQueue(
        topology.delay_queue(target, seconds),
        durable=True,
        routing_key=topology.delay_key(target, seconds),
        arguments={
            "x-message-ttl": round(seconds * 1000),
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": target,
        },
    )


async def declare_topology(broker: RabbitBroker, delays: dict[str, list[float]] | None = None) -> None:
    """Declare exchanges, every work queue with its dead-letter queue, and the given delay queues."""
    exchange = await broker.declare_exchange(EXCHANGE)
    dead = await broker.declare_exchange(DEAD_EXCHANGE)
    retry = await broker.declare_exchange(RETRY_EXCHANGE)
    for name, key in BINDINGS.items():
        queue = await broker.declare_queue(work_queue(name))
        await queue.bind(exchange, routing_key=key)
        parked = await broker.declare_queue(dead_queue(name))
        await parked.bind(dead, routing_key=topology.dead_letter_queue(name))
    for target, steps in (delays or {}).items():
        for seconds in steps:
            queue = await broker.declare_queue(delay_queue(target, seconds))
            await queue.bind(retry, routing_key=topology.delay_key(target, seconds))


_encoder = msgspec.json.Encoder()


class Publisher:
    """Publishes contract messages persistently and waits for RabbitMQ's confirm."""

    def __init__(self, broker: RabbitBroker, *, timeout: float = 5.0) -> None:
        self._broker = broker
        self._timeout = timeout

    async def publish(self, message: msgspec.Struct, routing_key: str, *,
                      message_id: str | None = None, headers: dict[str, Any] | None = None) -> None:
        """Publish to the main exchange; raise BrokerUnavailable unless RabbitMQ confirmed it."""
        await self._send(message, EXCHANGE, routing_key, message_id, headers)

    async def delay(self, message: msgspec.Struct, target_queue: str, seconds: float, *,
                    message_id: str | None = None) -> None:
        """Send ``message`` back to ``target_queue`` after ``seconds`` via its delay queue."""
        await self._send(message, RETRY_EXCHANGE, topology.delay_key(target_queue, seconds),
                         message_id, None)

    async def _send(self, message: msgspec.Struct, exchange: RabbitExchange, routing_key: str,
                    message_id: str | None, headers: dict[str, Any] | None) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._broker.publish(
                    _encoder.encode(message),
                    exchange=exchange,
                    routing_key=routing_key,
                    persist=True,
                    mandatory=True,
                    message_id=message_id,
                    headers=headers,
                    content_type="application/json",
                )
        except Exception as exc:  # any failure to get a confirm means "not published"
            raise BrokerUnavailable(f"publish to {routing_key!r} failed: {exc!r}") from exc
