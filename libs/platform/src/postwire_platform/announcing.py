"""A dispatcher's PROCESSING held back for the outcome, so that both go out in one AMQP message.

Each dispatcher (SMS, email, WhatsApp) reports PROCESSING when it claims a message and SENT or FAILED
when the provider answered. Published as it happens, PROCESSING costs a confirmed publish before the
provider call, and a message of its own that reporting consumes, acknowledges and records. Held here
instead: it waits for the outcome, at most ``hold`` seconds, and goes out with it, PROCESSING first, in
one ``StatusEvents`` (``pair``; off: one message each, PROCESSING confirmed first, for a rolling upgrade
in which reporting goes first). When the provider takes longer, PROCESSING goes out on its own after the
hold, and every later event of the message waits for its confirm, so a customer still hears of them in
order. Its time is the claim's either way (the caller builds the event).

One ``Announcer`` per dispatcher; one ``Held`` per delivery that owns its claim::

    held = announcer.hold(processing_event(cmd, claim.doc))
    try:
        ...                      # the provider call; outcomes go through ``announcer.publish``
        await held.out()         # PROCESSING is out (raises if its publish failed)
    except LeaseLost:
        held.withdraw()          # not ours to announce any more, unless it is already going out
    finally:
        await held.close()
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from postwire_contracts.messages import StatusEvent, StatusEvents


class Publishing(Protocol):
    """What the announcer publishes through (``postwire_platform.broker.Publisher`` fits)."""

    async def publish(self, message: msgspec.Struct, routing_key: str, *,
                      message_id: str | None = None, headers: dict[str, Any] | None = None) -> None:
        """Publish with a confirm; raise when it was not confirmed."""
        ...


@dataclass(eq=False)
class Held:
    """A message's PROCESSING waiting to go out: ``go`` lets it go; events appended to ``riders``
    before that go out in the same publish."""

    processing: StatusEvent
    _announcer: Announcer
    go: asyncio.Event = field(default_factory=asyncio.Event)
    riders: list[StatusEvent] = field(default_factory=list)
    task: asyncio.Future[None] = field(init=False)

    async def out(self) -> None:
        """Let PROCESSING go (with whatever rides along) and wait for its confirm."""
        self.go.set()
        await self.task

    def withdraw(self) -> None:
        """Drop PROCESSING unless it is already going out (the claim went to another delivery,
        whose PROCESSING it is to announce)."""
        if not self.go.is_set():
            self.task.cancel()

    async def close(self) -> None:
        """Let PROCESSING go if it was not withdrawn, stop holding, and wait for the publish without
        raising its error (``out`` is where it is raised)."""
        self.go.set()
        self._announcer.forget(self)
        await settle(self.task)


class Announcer:
    """Holds PROCESSING per message (see the module) and publishes status events under ``routing_key``."""

    def __init__(self, sink: Publishing, routing_key: str, *, hold: float, pair: bool) -> None:
        self._sink = sink
        self._routing_key = routing_key
        self._hold = hold
        self._pair = pair
        self._held: dict[str, Held] = {}
        """message id → its PROCESSING while held or going out: a later event gives the signal and
        rides along with it (or, too late for that, waits for its publish)."""

    def hold(self, processing: StatusEvent) -> Held:
        """Start holding ``processing`` (an event with a ``message_id``); it goes out on ``out``,
        with the first later event of its message, or after the hold, whichever comes first."""
        held = Held(processing, self)
        self._held[processing.message_id or ""] = held
        held.task = asyncio.ensure_future(self._announce(held))
        return held

    def forget(self, held: Held) -> None:
        if self._held.get(held.processing.message_id or "") is held:
            del self._held[held.processing.message_id or ""]

    async def publish(self, events: list[StatusEvent]) -> None:
        """Publish ``events`` (of one message, in order): along with the message's held PROCESSING
        if it has not gone out yet, else after its confirm."""
        held = self._held.get(events[0].message_id or "") if events else None
        if held is not None and all(e.event_id != held.processing.event_id for e in events):
            rides = self._pair and not held.go.is_set()
            if rides:
                held.riders.extend(events)
            held.go.set()
            # PROCESSING is confirmed before (or together with) any later event
            await asyncio.shield(held.task)
            if rides:
                return
        await self.publish_together(events)

    async def publish_together(self, events: list[StatusEvent]) -> None:
        """One confirmed publish: a lone event as itself, several (of one message, in order) as one
        ``StatusEvents`` unless ``pair`` is off (then one confirmed publish each, in order)."""
        if len(events) > 1 and self._pair:
            await self._sink.publish(StatusEvents(events=events), self._routing_key,
                                     message_id="+".join(e.event_id for e in events))
            return
        for event in events:
            await self._sink.publish(event, self._routing_key, message_id=event.event_id)

    async def _announce(self, held: Held) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(held.go.wait(), self._hold)
        held.go.set()  # from here on it goes out, with whatever rides along
        await self.publish_together([held.processing, *held.riders])


async def settle(task: asyncio.Future[Any]) -> None:
    """Wait for a side task whose outcome was (or need not be) used, without raising its error."""
    if not task.done():
        await asyncio.wait({task})  # neither raises its error nor cancels it if we are cancelled
    if not task.cancelled():
        task.exception()  # retrieved: no "never retrieved" warning
