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

from .batching import Coalescer


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


MESSAGE_ID_LIMIT = 200
"""Longest AMQP ``message_id`` a group is given (the field is a short string, at most 255 bytes)."""


class StatusGroups:
    """Status events published while an earlier publish of the same routing key awaits its confirm
    go out together, in order, as one ``StatusEvents``.

    A dispatcher publishes each receipt and each message's PROCESSING and outcome with a confirm of
    its own, and reporting consumes, acknowledges and records each AMQP message apart. When they come
    faster than a confirm's round trip (a burst: receipts and outcomes of many messages at once) the
    ones that queue behind a publish share the next one (``postwire_platform.batching.Coalescer``): an
    idle dispatcher publishes at once as before, a busy one makes fewer, fuller publishes. Each caller
    still waits for the confirm of the publish that carried its events and gets its error, so what it
    did after a confirm (a receipt waits for its message's SENT) keeps its order. Events of one
    message stay in the order they were published. Other messages (inbound events, delayed commands,
    anything with headers) go straight through, and so does everything when ``group`` is off (a
    rolling upgrade in which reporting, which reads ``StatusEvents``, goes first).
    """

    def __init__(self, sink: Any, *, group: bool = True, max_events: int = 100) -> None:
        self._sink = sink
        self._group = group
        self._max_events = max_events
        self._lanes: dict[str, Coalescer[tuple[StatusEvent | StatusEvents, str | None], None]] = {}

    async def publish(self, message: msgspec.Struct, routing_key: str, *,
                      message_id: str | None = None, headers: dict[str, Any] | None = None) -> None:
        """Publish with a confirm (raise when it was not confirmed), in a group when it is a status
        event or events without headers."""
        if not self._group or headers or not isinstance(message, StatusEvent | StatusEvents):
            await self._sink.publish(message, routing_key, message_id=message_id, headers=headers)
            return
        lane = self._lanes.get(routing_key)
        if lane is None:
            async def send(items: list[tuple[StatusEvent | StatusEvents, str | None]]) -> list[None]:
                await self._send(routing_key, items)
                return [None] * len(items)
            # a publish holds at most ``max_events`` messages (a ``StatusEvents`` counts as one)
            lane = self._lanes[routing_key] = Coalescer(send, max_batch=self._max_events,
                                                        name=f"status-groups:{routing_key}")
        await lane.submit((message, message_id))

    async def delay(self, message: msgspec.Struct, target_queue: str, seconds: float, *,
                    message_id: str | None = None) -> None:
        """Delayed commands are not status events: straight through (the dispatchers' sinks take
        no ``expiration``)."""
        await self._sink.delay(message, target_queue, seconds, message_id=message_id)

    async def _send(self, routing_key: str,
                    items: list[tuple[StatusEvent | StatusEvents, str | None]]) -> None:
        if len(items) == 1:
            message, message_id = items[0]
            await self._sink.publish(message, routing_key, message_id=message_id)
            return
        events = [e for message, _ in items
                  for e in (message.events if isinstance(message, StatusEvents) else [message])]
        await self._sink.publish(StatusEvents(events=events), routing_key,
                                 message_id=group_id([e.event_id for e in events]))


def group_id(event_ids: list[str]) -> str:
    """The AMQP ``message_id`` of a group: its event ids joined, or, when that would be too long for
    the field, the first and last with the count."""
    joined = "+".join(event_ids)
    if len(joined.encode()) <= MESSAGE_ID_LIMIT:
        return joined
    return f"{event_ids[0][:90]}+..+{event_ids[-1][:90]}({len(event_ids)})"
