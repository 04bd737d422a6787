"""Rotation signatures, replays, test events and the SSRF guard at delivery time."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from standardwebhooks import Webhook, WebhookVerificationError

from postwire_contracts.webhooks import ReplayDelivery, ReplayFailed, SendTestEvent, webhook_id
from postwire_platform.clock import utcnow
from postwire_platform.mongo import Document
from postwire_platform.webhook_store import rotate_secret
from postwire_platform.webhook_targets import UnresolvableHost
from postwire_testing.receiver import WebhookReceiver

from .fanout_support import KEYRING, attempts, command, count, endpoint, note, publish, running_fanout


async def test_during_a_rotation_each_delivery_carries_both_signatures(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    async with WebhookReceiver() as overlapping, WebhookReceiver() as expired:
        old, hook = await endpoint(db, "ten_a", overlapping.url)
        rotated = await rotate_secret(db, KEYRING, "ten_a", hook["_id"], overlap=timedelta(hours=1))
        assert rotated is not None
        new = rotated[0]
        old_b, hook_b = await endpoint(db, "ten_b", expired.url)
        rotated_b = await rotate_secret(db, KEYRING, "ten_b", hook_b["_id"],
                                        overlap=timedelta(milliseconds=1))
        assert rotated_b is not None
        await asyncio.sleep(0.1)  # ten_b's overlap is over
        async with running_fanout(amqp_url, mongodb_url, db_name) as publisher:
            await publish(publisher, note("ten_a"))
            await publish(publisher, note("ten_b"))
            [got] = await overlapping.wait_for(count(1))
            [got_b] = await expired.wait_for(count(1))
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(got.body, got.headers) == Webhook(new).verify(got.body, got.headers)
    assert len(got_b.headers["webhook-signature"].split(" ")) == 1
    expired.verify(rotated_b[0], got_b)
    with pytest.raises(WebhookVerificationError):  # the overlap is over: the old secret is done
        expired.verify(old_b, got_b)


async def test_a_replay_redelivers_the_same_body_with_the_same_webhook_id(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    async with WebhookReceiver() as hooks:
        secret, hook = await endpoint(db, "ten_a", hooks.url)
        async with running_fanout(amqp_url, mongodb_url, db_name) as publisher:
            n = note("ten_a")
            await publish(publisher, n)
            [first] = await hooks.wait_for(count(1))
            await attempts(db, {"event_id": n.event_id}, 1)
            replay = ReplayDelivery(command_id="cmd_r1", tenant_id="ten_a", endpoint_id=hook["_id"],
                                    webhook_id=first.headers["webhook-id"], requested_at=utcnow())
            await command(publisher, replay)
            _, again = await hooks.wait_for(count(2))
            records = await attempts(db, {"event_id": n.event_id}, 2)
    assert again.headers["webhook-id"] == first.headers["webhook-id"]
    assert again.body == first.body
    hooks.verify(secret, again)
    assert [(r["trigger"], r["run"], r["outcome"]) for r in records] == [
        ("event", "", "delivered"), ("replay", "cmd_r1", "delivered")]


async def test_every_failed_delivery_since_a_time_is_replayed(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    async with WebhookReceiver() as hooks:
        secret, hook = await endpoint(db, "ten_a", hooks.url)
        async with running_fanout(amqp_url, mongodb_url, db_name,
                                  webhook_retry_delays=[0.2]) as publisher:
            fine = note("ten_a")
            await publish(publisher, fine)
            await attempts(db, {"event_id": fine.event_id, "outcome": "delivered"}, 1)
            since = utcnow()
            hooks.default_status = 500
            failing = [note("ten_a") for _ in range(3)]
            for n in failing:
                await publish(publisher, n)
            await attempts(db, {"endpoint_id": hook["_id"], "outcome": "failed"}, 3)
            hooks.default_status = 200
            hooks.clear()
            await command(publisher, ReplayFailed(command_id="cmd_all", tenant_id="ten_a",
                                                  endpoint_id=hook["_id"], since=since,
                                                  requested_at=utcnow()))
            seen = await hooks.wait_for(count(3))
            await attempts(db, {"run": "cmd_all", "outcome": "delivered"}, 3)
            # replaying again finds nothing failed any more
            await command(publisher, ReplayFailed(command_id="cmd_again", tenant_id="ten_a",
                                                  endpoint_id=hook["_id"], since=since,
                                                  requested_at=utcnow()))
            await asyncio.sleep(1.0)
            assert len(hooks.requests) == 3
    assert {r.headers["webhook-id"] for r in seen} == {
        webhook_id(n.event_id, hook["_id"]) for n in failing}
    assert all(hooks.verify_all(secret, seen))


async def test_a_test_event_is_sent_once_and_recorded(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    async with WebhookReceiver() as hooks:
        secret, hook = await endpoint(db, "ten_a", hooks.url, events=["sms_failed"])
        async with running_fanout(amqp_url, mongodb_url, db_name) as publisher:
            ok = SendTestEvent(command_id="cmd_t1", tenant_id="ten_a", endpoint_id=hook["_id"],
                               event_id=f"evt_test_{uuid.uuid4().hex}", event_type="sms_delivered",
                               requested_at=utcnow())
            await command(publisher, ok)
            [got] = await hooks.wait_for(count(1))
            hooks.default_status = 500
            failing = SendTestEvent(command_id="cmd_t2", tenant_id="ten_a",
                                    endpoint_id=hook["_id"], event_id=f"evt_test_{uuid.uuid4().hex}",
                                    event_type="sms_failed", requested_at=utcnow())
            await command(publisher, failing)
            [record] = await attempts(db, {"event_id": failing.event_id}, 1)
            await asyncio.sleep(1.5)  # longer than the retry schedule: a test event is not retried
            assert len(hooks.requests) == 2
    payload = hooks.verify(secret, got)
    assert payload["type"] == "sms_delivered" and payload["data"]["test"] is True
    assert got.headers["webhook-id"] == webhook_id(ok.event_id, hook["_id"])
    assert (record["trigger"], record["status_code"], record["outcome"]) == ("test", 500, "failed")


async def test_private_targets_are_refused_at_delivery_and_connections_are_pinned(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        if host == "hooks.customer.test":
            return ["127.0.0.1"]  # a public-looking name that now points at loopback
        raise UnresolvableHost(host, "not in this test's DNS")

    async with WebhookReceiver() as hooks:
        port = hooks.url.split(":")[2].split("/")[0]
        named = f"http://hooks.customer.test:{port}/hook"
        _, hook = await endpoint(db, "ten_a", named)
        _, literal = await endpoint(db, "ten_b", hooks.url)
        async with running_fanout(amqp_url, mongodb_url, db_name, resolver=resolver,
                                  webhook_allow_private=False,
                                  webhook_retry_delays=[]) as publisher:
            await publish(publisher, note("ten_a"))
            await publish(publisher, note("ten_b"))
            refused = await attempts(db, {"outcome": "failed"}, 2)
        assert hooks.requests == []
        assert {r["endpoint_id"] for r in refused} == {hook["_id"], literal["_id"]}
        assert all(r["error"].startswith("private_target") for r in refused)

        # allowed (as in `make run`), the name is resolved by our resolver and the request carries it
        async with running_fanout(amqp_url, mongodb_url, db_name, resolver=resolver,
                                  webhook_allow_private=True) as publisher:
            await publish(publisher, note("ten_a"))
            [got] = await hooks.wait_for(count(1))
    assert got.headers["host"] == f"hooks.customer.test:{port}"
