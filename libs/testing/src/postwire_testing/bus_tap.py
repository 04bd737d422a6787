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

from postwire_platform.broker import EXCHANGE, Publisher, make_broker


class BusTap:
    """Messages received per name, decoded, in arrival order."""

    def __init__(self, broker: RabbitBroker) -> None:
        self.broker = broker
        self.publisher = Publisher(broker)
        self.seen: dict[str, list[Any]] = {}

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
                tap.seen[name].append(decoder.decode(message.body))
            return collect

        broker.subscriber(queue, EXCHANGE)(collector())
    await broker.start()
    try:
        yield tap
    finally:
        await broker.stop()
