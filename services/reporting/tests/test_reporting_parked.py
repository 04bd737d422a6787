"""Parked events (a receipt that named only a provider id nobody carried yet) are applied once a message
learns that id: also when two replicas race, one parking the receipt while the other writes the SENT
that teaches the id, and when a batch is redone after failing between its write and its look for
parked events. A batch that teaches no message an id does not look for parked events at all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts.status import Status
from postwire_platform.mongo import EVENTS, MESSAGES, Document
from postwire_reporting.recorder import Recorder

from .reporting_support import Bus, bus, event, insert_message, message


@pytest.fixture
async def wire(amqp_url: str) -> AsyncIterator[Bus]:
    async with bus(amqp_url) as b:
        yield b


class _HeldWrites:
    """A ``messages`` collection whose ``bulk_write`` waits until the test lets it through."""

    def __init__(self, collection: Any) -> None:
        self._collection = collection
        self.reached = asyncio.Event()
        self.go = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collection, name)

    async def bulk_write(self, *args: Any, **kwargs: Any) -> Any:
        self.reached.set()
        await self.go.wait()
        return await self._collection.bulk_write(*args, **kwargs)


async def test_a_receipt_parked_while_another_replica_writes_its_sent_is_applied(
        db: AsyncDatabase[Document], wire: Bus) -> None:
    mid = await insert_message(db)
    teaching, parking = Recorder(db, wire.publisher), Recorder(db, wire.publisher)
    held = _HeldWrites(db[MESSAGES])
    teaching._messages = held  # type: ignore[assignment]
    sent = event(Status.SENT, message_id=mid, provider_id="c-race", seconds=2)
    dlr = event(Status.DELIVERED, provider_id="c-race", seconds=4)

    writing = asyncio.create_task(teaching.process([sent]))
    await asyncio.wait_for(held.reached.wait(), 10)  # the SENT is about to be written
    await parking.process([dlr])  # nothing carries c-race yet: the receipt is parked
    parked = await db[EVENTS].find_one({"_id": dlr.event_id})
    assert parked is not None and parked["message_id"] is None
    held.go.set()
    await asyncio.wait_for(writing, 10)

    doc = await message(db, mid)
    assert doc["status"] == "DELIVERED"
    assert [e["event_id"] for e in doc["timeline"][1:]] == [sent.event_id, dlr.event_id]
    matched = await db[EVENTS].find_one({"_id": dlr.event_id})
    assert matched is not None and matched["message_id"] == mid
    assert "unmatched_provider_id" not in matched


async def test_a_batch_redone_after_its_write_still_applies_the_receipt_parked_for_it(
        db: AsyncDatabase[Document], wire: Bus) -> None:
    mid = await insert_message(db)
    recorder = Recorder(db, wire.publisher)
    dlr = event(Status.DELIVERED, provider_id="c-redo", seconds=4)
    await recorder.process([dlr])  # parked
    sent = event(Status.SENT, message_id=mid, provider_id="c-redo", seconds=2)
    # the SENT's batch wrote the message, then failed before looking for parked events
    await db[MESSAGES].update_one({"_id": mid}, {
        "$set": {"status": "SENT", "provider_message_id": "c-redo", "sent_at": sent.occurred_at},
        "$push": {"timeline": {"event_id": sent.event_id, "status": "SENT"}}})

    await recorder.process([sent])  # redelivered: redone

    doc = await message(db, mid)
    assert doc["status"] == "DELIVERED"
    assert [e["event_id"] for e in doc["timeline"][1:]] == [sent.event_id, dlr.event_id]


class _Finds(monitoring.CommandListener):
    def __init__(self) -> None:
        self.filters: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command.get("find") == EVENTS:
            self.filters.append(dict(event.command.get("filter") or {}))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_only_a_batch_that_teaches_a_provider_id_looks_for_parked_events(
        mongodb_url: str, db: AsyncDatabase[Document], wire: Bus) -> None:
    finds = _Finds()
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url, tz_aware=True,
                                                         event_listeners=[finds])
    try:
        recorder = Recorder(client[db.name], wire.publisher)
        mid = await insert_message(db)
        await recorder.process([event(Status.SENT, message_id=mid, provider_id="c-1", seconds=2)])
        assert [f for f in finds.filters if "unmatched_provider_id" in f] == [
            {"unmatched_provider_id": {"$in": ["c-1"]}, "message_id": None}]
        finds.filters.clear()

        await recorder.process([event(Status.DELIVERED, message_id=mid, provider_id="c-1",
                                      seconds=4)])

        assert [f for f in finds.filters if "unmatched_provider_id" in f] == []
        assert (await message(db, mid))["status"] == "DELIVERED"
    finally:
        await client.close()
