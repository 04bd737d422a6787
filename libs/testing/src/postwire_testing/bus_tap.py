"""A test's own view of any messages on the exchange: one auto-deleted queue per routing pattern.

``EventTap`` (``taps.py``) covers status events; this one takes any pattern and any contract decoder,
e.g. inbound events (``event.inbound.#``) and inbound notifications (``notify.inbound.#``)::

    async with bus_tap(amqp_url, {"inbound": ("event.inbound.#", event_decoder)}) as bus:
        [event] = await bus.wait("inbound", 1)
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from faststream.rabbit import RabbitBroker, RabbitQueue
from faststream.rabbit.annotations import RabbitMessage

from postwire_contracts.messages import StatusEvents
from postwire_platform.broker import EXCHANGE, Publisher, make_broker


class BusTap:
    """Messages received per name, decoded, in arrival order (a ``StatusEvents``' events one by
    one)."""

    def __init__(self, broker: RabbitBroker) -> None:
        self.broker = broker
        self.publisher = Publisher(broker)
        self.seen: dict[str, list[Any]] = {}
        self.deliveries: dict[str, int] = {}
        """AMQP messages received per name (a ``StatusEvents`` is one)."""

    def of(self, name: str, predicate: Callable[[Any], bool] | None = None) -> list[Any]:
        return [m for m in self.seen.get(name, []) if predicate is None or predicate(m)]

    async def wait(self, name: str, count: int = 1, *, predicate: Callable[[Any], bool] | None = None,
                   timeout: float = 15.0) -> list[Any]:
        """Wait (bounded) until ``count`` matching messages arrived under ``name``; return them."""
        deadline = time.monotonic() + timeout
        while len(self.of(name, predicate)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"expected {count} {name} message(s), saw {self.of(name)}")
            await asyncio.sleep(0.02)
        return self.of(name, predicate)


@asynccontextmanager
async def bus_tap(amqp_url: str,
                  patterns: dict[str, tuple[str, msgspec.json.Decoder[Any]]]) -> AsyncIterator[BusTap]:
    """A broker of the test's own with a queue per ``name: (routing pattern, decoder)``."""
    broker = make_broker(amqp_url)
    tap = BusTap(broker)
    for name, (pattern, decoder) in patterns.items():
        tap.seen[name] = []
        queue = RabbitQueue(f"test.{name}.{uuid.uuid4().hex[:8]}", routing_key=pattern,
                            auto_delete=True)

        def collector(name: str = name,
                      decoder: msgspec.json.Decoder[Any] = decoder) -> Callable[..., Any]:
            async def collect(message: RabbitMessage) -> None:
                decoded = decoder.decode(message.body)
                tap.deliveries[name] = tap.deliveries.get(name, 0) + 1
                # status events published together (a dispatcher's pair, ``StatusGroups``' groups)
                # are seen one by one, as if each had come alone
                tap.seen[name].extend(decoded.events if isinstance(decoded, StatusEvents)
                                      else [decoded])
            return collect

        broker.subscriber(queue, EXCHANGE)(collector())
    await broker.start()
    try:
        yield tap
    finally:
        await broker.stop()
