"""RabbitMQ: the broker factory, the declared topology and a confirmed publisher.

Every service declares the whole topology at start-up (declarations are idempotent), so the gateway can
publish a send before the dispatcher that consumes it has ever started, and nothing is unroutable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import msgspec
from fast_depends.msgspec import MsgSpecSerializer
from faststream.message import StreamMessage
from faststream.rabbit import ExchangeType, QueueType, RabbitBroker, RabbitExchange, RabbitQueue
from faststream.rabbit.schemas import Channel

from postwire_contracts import topology
from postwire_contracts.status import Channel as ContractChannel

from . import telemetry

log = logging.getLogger(__name__)

EXCHANGE = RabbitExchange(topology.EXCHANGE, type=ExchangeType.TOPIC, durable=True)
DEAD_EXCHANGE = RabbitExchange(topology.DEAD_LETTER_EXCHANGE, type=ExchangeType.DIRECT, durable=True)
RETRY_EXCHANGE = RabbitExchange(topology.RETRY_EXCHANGE, type=ExchangeType.DIRECT, durable=True)

BINDINGS: dict[str, str] = {
    topology.SMS_SEND_QUEUE: topology.SEND_SMS,
    topology.SMS_OTP_QUEUE: topology.SEND_SMS_OTP,
    topology.EMAIL_SEND_QUEUE: topology.SEND_EMAIL,
    topology.WHATSAPP_SEND_QUEUE: topology.SEND_WHATSAPP,
    topology.REPORTING_QUEUE: topology.EVENTS_PATTERN,
    topology.FANOUT_QUEUE: topology.NOTIFY_PATTERN,
    topology.FANOUT_DELIVERY_QUEUE: topology.FANOUT_DELIVERY_KEY,
    topology.FANOUT_COMMAND_QUEUE: topology.FANOUT_COMMAND_KEY,
    topology.WHATSAPP_INBOUND_QUEUE: topology.inbound_key(ContractChannel.WHATSAPP),
    topology.INGEST_INBOUND_QUEUE: topology.inbound_key(ContractChannel.SMS),
}


QueueKind = Literal["classic", "quorum"]

_queue_type: dict[str, QueueKind] = {"value": "classic"}


def set_queue_type(kind: QueueKind) -> None:
    """Declare Postwire's queues as ``classic`` (local default) or ``quorum`` (replicated, Kubernetes).

    Set once per process from ``AMQP_QUEUE_TYPE`` (``service.new_broker`` does) before any queue is
    built. Every service of an installation must agree: RabbitMQ refuses to redeclare a queue with
    another type (PRECONDITION_FAILED), so switching an existing installation means draining and
    deleting its queues first (docs/operations.md).
    """
    if kind not in ("classic", "quorum"):
        raise ValueError(f"unknown queue type {kind!r}")
    _queue_type["value"] = kind


def queue_type() -> QueueKind:
    """The queue type queues are declared with."""
    return _queue_type["value"]


def _queue(name: str, routing_key: str, arguments: dict[str, Any]) -> RabbitQueue:
    # Quorum queues support what we use: dead-lettering and (RabbitMQ >= 3.10) per-queue message TTL.
    args: Any = arguments
    if _queue_type["value"] == "quorum":
        return RabbitQueue(name, queue_type=QueueType.QUORUM, durable=True, routing_key=routing_key,
                           arguments=args)
    return RabbitQueue(name, queue_type=QueueType.CLASSIC, durable=True, routing_key=routing_key,
                       arguments=args)


PUBLISHED_HEADER = "x-published-ms"
"""Publish time in milliseconds, for the consumer-lag metric (AMQP's own timestamp has whole seconds)."""


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


async def raw_body(message: StreamMessage[Any]) -> bytes:
    """A subscriber's ``decoder`` that hands the handler the body as it came (``body: bytes``), for a
    handler that decodes it itself.

    Taking the whole ``RabbitMessage`` instead resolves a FastStream ``Context`` field, which
    fast_depends calls in a worker thread on every delivery: about 0.45 ms of CPU per message
    measured here (0.9 against 0.45 ms per publish and consume), and a thread hop on the way in.
    """
    return message.body


def contract_body(kind: Any) -> Callable[[StreamMessage[Any]], Awaitable[Any]]:
    """A subscriber's ``decoder`` that decodes the body straight into ``kind`` (a contract struct, or
    a union of tagged ones) with msgspec, for a handler whose one parameter is of that type.

    Without it FastStream parses the body with the standard library's ``json`` into dicts and lists,
    and fast_depends then converts those into the struct; msgspec builds the struct from the bytes in
    one pass, and fast_depends passes an instance of the right type through as it is. A body that does
    not decode raises here, where FastStream's own decoding would have: the message is rejected to
    its dead-letter queue as before.
    """
    decoder = msgspec.json.Decoder(kind)

    async def decode(message: StreamMessage[Any]) -> Any:
        return decoder.decode(message.body)

    return decode


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
    return _queue(name, BINDINGS[name], {
        "x-dead-letter-exchange": topology.DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": topology.dead_letter_queue(name),
    })


def dead_queue(name: str) -> RabbitQueue:
    return _queue(topology.dead_letter_queue(name), topology.dead_letter_queue(name), {})


def delay_queue(target: str, seconds: float) -> RabbitQueue:
    """A queue that holds messages ``seconds`` and then dead-letters them straight into ``target``.

    RabbitMQ here has no delayed-message plugin: a per-queue TTL plus dead-lettering to the default
    exchange (routing key = the target queue's name) is the portable way to delay.
    """
    return _queue(topology.delay_queue(target, seconds), topology.delay_key(target, seconds), {
        "x-message-ttl": round(seconds * 1000),
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": target,
    })


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
                    message_id: str | None = None, expiration: float | None = None) -> None:
        """Send ``message`` back to ``target_queue`` after ``seconds`` via its delay queue.

        ``expiration`` (seconds, at most ``seconds``) shortens this message's stay: a per-message TTL
        under the queue's, which is how a caller adds jitter without a queue per jittered value (a
        message only expires at the head of the queue, so it may wait up to the spread longer).
        """
        await self._send(message, RETRY_EXCHANGE, topology.delay_key(target_queue, seconds),
                         message_id, None, expiration)

    async def _send(self, message: msgspec.Struct, exchange: RabbitExchange, routing_key: str,
                    message_id: str | None, headers: dict[str, Any] | None,
                    expiration: float | None = None) -> None:
        telemetry.annotate(message, keep=True)  # the request or consumer span learns the ids
        headers = {**(headers or {}), PUBLISHED_HEADER: int(time.time() * 1000)}
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
                    expiration=expiration,
                )
        except Exception as exc:  # any failure to get a confirm means "not published"
            raise BrokerUnavailable(f"publish to {routing_key!r} failed: {exc!r}") from exc
