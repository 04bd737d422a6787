"""Isolation: one slow or dead endpoint does not hold up anyone else; a dead one comes back whole."""

from __future__ import annotations

import asyncio

from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts.status import Status
from postwire_platform.mongo import Document
from postwire_testing.receiver import ReceivedRequest, WebhookReceiver

from .fanout_support import attempts, count, endpoint, note, publish, running_fanout


def webhook_ids(requests: list[ReceivedRequest]) -> list[str]:
    return [r.headers["webhook-id"] for r in requests]


async def test_a_hanging_endpoint_does_not_hold_up_another_tenants_deliveries(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    async with WebhookReceiver() as hanging, WebhookReceiver() as healthy:
        await endpoint(db, "ten_slow", hanging.url)
        await endpoint(db, "ten_other", healthy.url)
        hanging.hold()
        # Four consumer slots in all; the hanging endpoint may hold two of them.
        async with running_fanout(amqp_url, mongodb_url, db_name, prefetch=4,
                                  webhook_endpoint_concurrency=2, webhook_timeout=60.0,
                                  webhook_breaker_threshold=100) as publisher:
            slow = [note("ten_slow") for _ in range(10)]
            for n in slow:
                await publish(publisher, n)
            await hanging.wait_for(count(2))
            for _ in range(10):
                await publish(publisher, note("ten_other"))
            # Without isolation these would queue behind ten 60-second hangs.
            got = await healthy.wait_for(count(10), timeout=30)
            assert len(hanging.requests) == 2  # the limit: the other eight were set aside
            hanging.release()
            arrived = await hanging.wait_for(count(10), timeout=30)
            await attempts(db, {"tenant_id": "ten_slow", "outcome": "delivered"}, 10)
            await asyncio.sleep(0.5)
            assert len(hanging.requests) == 10
    assert len(set(webhook_ids(got))) == 10
    assert sorted(r.json()["data"]["messageId"] for r in arrived) == sorted(
        n.message_id for n in slow)
    assert len(set(webhook_ids(arrived))) == 10


async def test_an_endpoint_down_for_a_while_receives_everything_exactly_once_when_back(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    receiver = WebhookReceiver()
    await asyncio.to_thread(receiver.start)
    url = receiver.url
    await asyncio.to_thread(receiver.stop)  # down: connections are refused
    secret, hook = await endpoint(db, "ten_a", url)
    try:
        async with running_fanout(amqp_url, mongodb_url, db_name,
                                  webhook_retry_delays=[0.3, 0.5, 1, 1, 1, 2, 2, 2, 2],
                                  webhook_breaker_threshold=2,
                                  webhook_breaker_cooldown=1.0) as publisher:
            notes = [note("ten_a") for _ in range(5)]
            for n in notes:
                await publish(publisher, n)
            # the breaker opened: attempts are skipped (and recorded) instead of hitting a dead host
            skipped = await attempts(db, {"endpoint_id": hook["_id"],
                                          "error": {"$regex": "^circuit_open"}}, 1)
            assert skipped[0]["status_code"] is None and skipped[0]["outcome"] == "retrying"
            await asyncio.to_thread(receiver.start)  # back, on the same port
            seen = await receiver.wait_for(lambda rs: len(set(webhook_ids(rs))) >= 5, timeout=30)
            await attempts(db, {"endpoint_id": hook["_id"], "outcome": "delivered"}, 5)
            await asyncio.sleep(1.0)
            seen = receiver.requests
    finally:
        await asyncio.to_thread(receiver.stop)
    ids = webhook_ids(seen)
    assert len(ids) == len(set(ids)) == 5  # everything, exactly once per webhook-id
    assert all(receiver.verify_all(secret, seen))
    assert {r.json()["data"]["messageId"] for r in seen} == {n.message_id for n in notes}
    records = await attempts(db, {"endpoint_id": hook["_id"]}, 10)
    assert {r["outcome"] for r in records} == {"retrying", "delivered"}
    assert all(r["error"] is not None for r in records if r["outcome"] == "retrying")


async def test_a_cookie_an_endpoint_sets_is_never_sent_back(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    """Deliveries carry no cookies: one endpoint's ``Set-Cookie`` reaches neither it nor another
    tenant's endpoint on the same host (two customers of one webhook relay, say)."""
    async with WebhookReceiver() as relay:
        await endpoint(db, "ten_a", relay.url)
        await endpoint(db, "ten_b", relay.url)
        relay.respond(200, headers={"set-cookie": "session=secret-of-ten-a; Path=/"})
        async with running_fanout(amqp_url, mongodb_url, db_name) as publisher:
            await publish(publisher, note("ten_a", Status.SENT))
            await relay.wait_for(count(1))
            await publish(publisher, note("ten_a", Status.SENT))
            await publish(publisher, note("ten_b", Status.SENT))
            got = await relay.wait_for(count(3))
    assert [r.headers.get("cookie") for r in got] == [None, None, None]
