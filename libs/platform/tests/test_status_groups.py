"""Status events published while an earlier publish awaits its confirm share the next publish
(``StatusGroups``): against a real RabbitMQ, what reaches the queue is every event once, in order."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from faststream.rabbit import RabbitBroker
from faststream.rabbit.annotations import RabbitMessage

from postwire_contracts import topology
from postwire_contracts.messages import EventMessage, InboundEvent, StatusEvent, StatusEvents
from postwire_contracts.status import Channel, Status
from postwire_platform.announcing import MESSAGE_ID_LIMIT, StatusGroups, group_id
from postwire_platform.broker import (
    BrokerUnavailable,
    Publisher,
    declare_topology,
    make_broker,
    work_queue,
)
from postwire_platform.clock import utcnow

KEY = topology.status_key(Channel.SMS)
_ids = itertools.count()


def status(mid: str, state: Status, step: int = 0) -> StatusEvent:
    return StatusEvent(event_id=f"{mid}:{state.value}:{next(_ids)}", channel=Channel.SMS,
                       status=state, occurred_at=utcnow() + timedelta(milliseconds=step),
                       source="test", message_id=mid)


class Received:
    """What the reporting queue got: each AMQP message with its ``message_id``."""

    def __init__(self) -> None:
        self.messages: list[tuple[EventMessage, str | None]] = []
        self.changed = asyncio.Event()

    def events(self) -> list[StatusEvent]:
        out: list[StatusEvent] = []
        for message, _ in self.messages:
            if isinstance(message, StatusEvents):
                out.extend(message.events)
            elif isinstance(message, StatusEvent):
                out.append(message)
        return out

    async def until(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.events()) < count:
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def wired(amqp_url: str) -> AsyncIterator[tuple[Publisher, Received]]:
    broker: RabbitBroker = make_broker(amqp_url)
    received = Received()

    decode = msgspec.json.Decoder(EventMessage).decode

    @broker.subscriber(work_queue(topology.REPORTING_QUEUE))
    async def handle(message: RabbitMessage) -> None:
        received.messages.append((decode(message.body), message.message_id))
        received.changed.set()

    await broker.connect()
    await declare_topology(broker)
    await broker.start()
    try:
        yield Publisher(broker), received
    finally:
        await broker.stop()


async def test_a_lone_event_goes_out_at_once_as_itself(wired: tuple[Publisher, Received]) -> None:
    publisher, received = wired
    groups = StatusGroups(publisher)
    event = status("m-lone", Status.SENT)
    await groups.publish(event, KEY, message_id=event.event_id)
    await received.until(1)
    assert received.messages == [(event, event.event_id)]


async def test_events_that_queue_behind_a_publish_go_out_together_in_order(
        wired: tuple[Publisher, Received]) -> None:
    publisher, received = wired
    groups = StatusGroups(publisher, max_events=25)
    per_message = {f"m{i}": [status(f"m{i}", s, step)
                             for step, s in enumerate((Status.PROCESSING, Status.SENT,
                                                       Status.DELIVERED))]
                   for i in range(40)}

    async def one_message(events: list[StatusEvent]) -> None:
        # PROCESSING and SENT together (as the announcer sends them), then the receipt after
        # their confirm, as a dispatcher publishes them
        await groups.publish(StatusEvents(events=events[:2]), KEY,
                             message_id="+".join(e.event_id for e in events[:2]))
        await groups.publish(events[2], KEY, message_id=events[2].event_id)

    await asyncio.gather(*(one_message(events) for events in per_message.values()))
    total = sum(len(events) for events in per_message.values())
    await received.until(total)
    await asyncio.sleep(0.2)  # nothing more arrives
    got = received.events()
    assert sorted(e.event_id for e in got) == sorted(
        e.event_id for events in per_message.values() for e in events)  # each once
    for mid, events in per_message.items():
        assert [e.event_id for e in got if e.message_id == mid] == [e.event_id for e in events]
    # far fewer AMQP messages than the 80 publishes, none over the cap, and short message ids
    assert len(received.messages) <= 20
    assert all(len(m.events) <= 25 * 2 for m, _ in received.messages if isinstance(m, StatusEvents))
    assert all(len((mid or "").encode()) <= MESSAGE_ID_LIMIT for _, mid in received.messages)


async def test_other_messages_and_an_ungrouped_sink_go_straight_through(
        wired: tuple[Publisher, Received]) -> None:
    publisher, received = wired
    inbound = InboundEvent(event_id="mo-1", channel=Channel.SMS, sender="+447700900123",
                           recipient="Postwire", body="STOP", received_at=utcnow())
    ungrouped = StatusGroups(publisher, group=False)
    events = [status("m-seq", s, step) for step, s in enumerate((Status.SENT, Status.DELIVERED))]
    await asyncio.gather(
        StatusGroups(publisher).publish(inbound, topology.inbound_key(Channel.SMS),
                                        message_id="mo-1"),
        *(ungrouped.publish(e, KEY, message_id=e.event_id) for e in events))
    await received.until(2)
    await asyncio.sleep(0.2)
    # each as itself (reporting's queue takes every ``event.#``, the inbound one too)
    assert sorted(received.messages, key=lambda m: m[1] or "") == sorted(
        [(inbound, "mo-1"), *((e, e.event_id) for e in events)], key=lambda m: m[1] or "")


class FailingOnce:
    """A sink whose first publish is never confirmed."""

    def __init__(self) -> None:
        self.calls: list[tuple[msgspec.Struct, str | None]] = []
        self.release = asyncio.Event()

    async def publish(self, message: msgspec.Struct, routing_key: str, *,
                      message_id: str | None = None, headers: dict[str, Any] | None = None) -> None:
        self.calls.append((message, message_id))
        if len(self.calls) == 1:
            await self.release.wait()
        if len(self.calls) <= 2:
            raise BrokerUnavailable("not confirmed")


async def test_an_unconfirmed_group_fails_each_of_its_callers_and_the_next_group_goes_out() -> None:
    sink = FailingOnce()
    groups = StatusGroups(sink)
    first = asyncio.ensure_future(groups.publish(status("a", Status.SENT), KEY))
    await asyncio.sleep(0)
    queued = [asyncio.ensure_future(groups.publish(status(m, Status.SENT), KEY)) for m in "bc"]
    await asyncio.sleep(0)
    sink.release.set()
    outcomes = await asyncio.gather(first, *queued, return_exceptions=True)
    assert all(isinstance(o, BrokerUnavailable) for o in outcomes)  # its own or its group's
    assert [type(m) for m, _ in sink.calls] == [StatusEvent, StatusEvents]
    await groups.publish(status("d", Status.SENT), KEY)  # the lane still works
    assert len(sink.calls) == 3


def test_a_group_id_fits_the_amqp_field() -> None:
    short = ["a:1", "b:2"]
    assert group_id(short) == "a:1+b:2"
    long = [f"smpp:route-{i}:{'x' * 40}:DELIVRD" for i in range(100)]
    gid = group_id(long)
    assert len(gid.encode()) <= 255 and gid.startswith(long[0]) and gid.endswith("(100)")
