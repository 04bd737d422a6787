"""First attempts to a quick endpoint are made from the notification; a slow one cannot hold many."""

from __future__ import annotations

from prometheus_client import REGISTRY
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts.status import Status
from postwire_platform.mongo import Document
from postwire_testing.receiver import WebhookReceiver

from .fanout_support import attempts, count, endpoint, note, publish, running_fanout


def _first_attempts(path: str) -> float:
    return REGISTRY.get_sample_value("postwire_webhook_first_attempts_total", {"path": path}) or 0.0


async def test_a_quick_endpoint_gets_its_first_attempts_straight_from_the_notification(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    async with WebhookReceiver() as hooks:
        _, hook = await endpoint(db, "ten_a", hooks.url)
        inline, queued = _first_attempts("inline"), _first_attempts("job")
        async with running_fanout(amqp_url, mongodb_url, db_name) as publisher:
            await publish(publisher, note("ten_a", Status.SENT))  # not known yet: through a job
            await hooks.wait_for(count(1), timeout=20)
            notes = [note("ten_a", Status.SENT) for _ in range(5)]
            for n in notes:
                await publish(publisher, n)
            seen = await hooks.wait_for(count(6), timeout=20)
            records = await attempts(db, {"endpoint_id": hook["_id"]}, 6)
    assert (_first_attempts("job") - queued, _first_attempts("inline") - inline) == (1, 5)
    assert {r.json()["data"]["messageId"] for r in seen[1:]} == {n.message_id for n in notes}
    assert [(r["attempt"], r["trigger"], r["outcome"]) for r in records] == [
        (1, "event", "delivered")] * 6


async def test_an_endpoint_that_turns_slow_holds_no_more_notifications_than_the_inline_limit(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    async with WebhookReceiver() as slow, WebhookReceiver() as other:
        await endpoint(db, "ten_a", slow.url)
        await endpoint(db, "ten_b", other.url)
        async with running_fanout(amqp_url, mongodb_url, db_name, webhook_inline_attempts=2,
                                  webhook_timeout=30.0) as publisher:
            for tenant in ("ten_a", "ten_b"):  # both answer quickly at first
                await publish(publisher, note(tenant, Status.SENT))
            await slow.wait_for(count(1), timeout=20)
            await other.wait_for(count(1), timeout=20)
            inline, queued = _first_attempts("inline"), _first_attempts("job")
            slow.hold()  # from now on ten_a's endpoint hangs
            for _ in range(6):
                await publish(publisher, note("ten_a", Status.SENT))
            await slow.wait_for(count(7), timeout=20)  # all six are in flight, two of them inline
            assert (_first_attempts("inline") - inline, _first_attempts("job") - queued) == (2, 4)
            # the notification consumer is not held up: another tenant's webhooks keep flowing
            for _ in range(3):
                await publish(publisher, note("ten_b", Status.SENT))
            await other.wait_for(count(4), timeout=20)
            slow.release()
            await attempts(db, {"tenant_id": "ten_a", "outcome": "delivered"}, 7)
