"""The gateway marks a published message ``published: true`` itself only after a delay, by which time
reporting has mostly done it with the message's first status event; until then the message is not
marked, and a stopping gateway marks what it holds without waiting."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_gateway.published import PublishedMarker
from postwire_platform.clock import utcnow
from postwire_platform.mongo import Document

from .gateway_support import in_app


async def _published(db: AsyncDatabase[Document]) -> dict[str, bool]:
    return {doc["_id"]: doc["published"] async for doc in db["messages"].find({})}


async def _store(db: AsyncDatabase[Document], *ids: str) -> None:
    now = utcnow()
    await db["messages"].insert_many([{"_id": i, "tenant_id": "ten_x", "channel": "sms",
                                       "status": "QUEUED", "accepted_at": now, "published": False}
                                      for i in ids])


async def test_a_message_is_marked_once_its_delay_is_over_whoever_marked_it_first(
        app: Litestar, client: AsyncTestClient[Any], db: AsyncDatabase[Document]) -> None:
    now = [100.0]
    marker = PublishedMarker(app.state.runtime, delay=2.0, clock=lambda: now[0])
    await _store(db, "early", "late", "by-reporting")
    for message_id in ("early", "by-reporting"):
        marker.add(message_id)
    now[0] = 101.0
    marker.add("late")
    await db["messages"].update_one({"_id": "by-reporting"}, {"$set": {"published": True}})

    now[0] = 101.9  # nothing is due yet
    assert await in_app(client, marker.flush) == 0
    assert await _published(db) == {"early": False, "late": False, "by-reporting": True}

    now[0] = 102.0  # the first two are due; the one reporting marked stays marked
    assert await in_app(client, marker.flush) == 2
    assert await _published(db) == {"early": True, "late": False, "by-reporting": True}
    assert marker.marked == 1  # "by-reporting" was not written again, only "early"

    now[0] = 103.0
    assert await in_app(client, marker.flush) == 1
    assert await _published(db) == {"early": True, "late": True, "by-reporting": True}
    assert marker.marked == 2


async def test_a_stopping_gateway_marks_what_it_holds_without_waiting(
        app: Litestar, client: AsyncTestClient[Any], db: AsyncDatabase[Document]) -> None:
    marker = PublishedMarker(app.state.runtime, delay=3600.0, batch_size=2)
    ids = [f"m{i}" for i in range(5)]
    await _store(db, *ids)
    for message_id in ids:
        marker.add(message_id)
    await in_app(client, marker.start)
    assert await in_app(client, marker.flush) == 0

    await in_app(client, marker.stop)

    assert await _published(db) == dict.fromkeys(ids, True)
