"""Customer webhooks end to end: an endpoint made through the API (and one by the operator CLI) gets
every status event of its tenant signed per Standard Webhooks; attempts, replay, test events and secret
rotation work through the gateway."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from postwire_testing.receiver import ReceivedRequest, WebhookReceiver
from postwire_testing.system import DevSystem

from .helpers import cli, send_body

pytestmark = pytest.mark.e2e


async def listed(client: httpx.AsyncClient, path: str, auth: dict[str, str],
                 n: int) -> list[dict[str, Any]]:
    """A bounded poll of an attempts list until it has ``n`` entries."""
    for _ in range(100):
        r = await client.get(path, headers=auth)
        assert r.status_code == 200, r.text
        if len(r.json()["data"]) >= n:
            return list(r.json()["data"])
        await asyncio.sleep(0.2)
    raise AssertionError(f"fewer than {n} attempts at {path}")


def of(message_ids: set[str]) -> Any:
    def mine(requests: list[ReceivedRequest]) -> list[ReceivedRequest]:
        return [q for q in requests if q.json()["data"]["messageId"] in message_ids]
    return mine


async def test_status_events_reach_the_tenant_endpoint_signed(system: DevSystem) -> None:
    info = system.info
    auth = {"Authorization": f"Bearer {info['api_key']}"}
    async with (WebhookReceiver() as receiver, WebhookReceiver() as operators,
                httpx.AsyncClient(base_url=info["gateway"], timeout=10) as client):
        # `make run` allows loopback targets, and the demo key is a test key: plain http is fine
        created = await client.post("/v1/webhook-endpoints", headers=auth,
                                    json={"url": receiver.url, "description": "local"})
        assert created.status_code == 201, created.text
        endpoint = created.json()["data"]
        assert endpoint["secret"].startswith("whsec_") and endpoint["mode"] == "test"
        by_cli = cli(system.mongodb_url, "webhooks", "create", "--tenant", info["tenant_id"],
                     "--state-dir", str(system.state_dir), "--events", "sms_failed", operators.url)
        # webhook-fanout re-reads a tenant's endpoints every ENDPOINT_CACHE_SECONDS (1 s): a new
        # endpoint receives the events that happen after that.
        await asyncio.sleep(1.5)
        body = {**send_body(info["sender_id"]), "metadata": {"order": "A-1"}}
        r = await client.post("/v1/sms/send", headers=auth, json=body)
        assert r.status_code == 201, r.text
        message_id = r.json()["data"]["id"]
        failed = await client.post("/v1/sms/send", headers=auth,
                                   json=send_body(info["sender_id"], to="+15005550001"))
        failed_id = failed.json()["data"]["id"]

        mine = of({message_id, failed_id})
        seen = mine(await receiver.wait_for(lambda rs: len(mine(rs)) >= 3, timeout=30))
        payloads = receiver.verify_all(endpoint["secret"], seen)
        [only_failure] = await operators.wait_for(lambda rs: len(mine(rs)) >= 1, timeout=30)
        assert operators.verify(by_cli["secret"], only_failure)["type"] == "sms_failed"

        by_type = {(p["data"]["messageId"], p["type"]) for p in payloads}
        assert by_type == {(message_id, "sms_sent"), (message_id, "sms_delivered"),
                           (failed_id, "sms_failed")}
        types = [p["type"] for p in payloads if p["data"]["messageId"] == message_id]
        assert types == ["sms_sent", "sms_delivered"]  # in status order
        delivered = next(p for p in payloads if p["type"] == "sms_delivered")
        assert delivered["data"]["status"] == "DELIVERED"
        assert delivered["data"]["metadata"] == {"order": "A-1"}
        assert delivered["data"]["recipient"] == "+447911123456"
        assert delivered["data"]["providerMessageId"] and delivered["data"]["live"] is False
        ids = [q.headers["webhook-id"] for q in seen]
        assert len(ids) == len(set(ids)) == 3

        # every attempt is listed, per message and per endpoint (recorded once the answer is in)
        attempts = await listed(client, f"/v1/webhook-attempts?messageId={message_id}", auth, 2)
        assert {(a["eventType"], a["outcome"], a["statusCode"]) for a in attempts
                if a["endpointId"] == endpoint["id"]} == {("sms_sent", "delivered", 200),
                                                         ("sms_delivered", "delivered", 200)}
        per_endpoint = await listed(client, f"/v1/webhook-endpoints/{endpoint['id']}/attempts",
                                    auth, 3)
        assert {a["endpointId"] for a in per_endpoint} == {endpoint["id"]}

        # a replay delivers the same body again under the same webhook-id
        original = next(q for q in seen if q.json()["type"] == "sms_delivered")
        replay = await client.post(f"/v1/webhook-endpoints/{endpoint['id']}/replay", headers=auth,
                                   json={"webhookId": original.headers["webhook-id"]})
        assert replay.status_code == 202, replay.text
        again = await receiver.wait_for(
            lambda rs: [q.headers["webhook-id"] for q in rs].count(
                original.headers["webhook-id"]) >= 2, timeout=30)
        copy = [q for q in again if q.headers["webhook-id"] == original.headers["webhook-id"]][-1]
        assert copy.body == original.body
        receiver.verify(endpoint["secret"], copy)

        # a test event
        test = await client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=auth,
                                 json={"eventType": "sms_delivered"})
        assert test.status_code == 202, test.text
        test_id = test.json()["data"]["webhookId"]
        got = await receiver.wait_for(
            lambda rs: any(q.headers["webhook-id"] == test_id for q in rs), timeout=30)
        test_request = next(q for q in got if q.headers["webhook-id"] == test_id)
        assert receiver.verify(endpoint["secret"], test_request)["data"]["test"] is True

        # after a rotation, deliveries carry the old and the new signature
        rotated = await client.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret",
                                    headers=auth, json={"overlapSeconds": 600})
        assert rotated.status_code == 200, rotated.text
        new_secret = rotated.json()["data"]["secret"]
        await asyncio.sleep(1.5)  # the endpoint cache
        later = await client.post("/v1/sms/send", headers=auth, json=send_body(info["sender_id"]))
        later_only = of({later.json()["data"]["id"]})
        [after, *_] = later_only(await receiver.wait_for(lambda rs: len(later_only(rs)) >= 1,
                                                         timeout=30))
    assert len(after.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(endpoint["secret"]).verify(after.body, after.headers) == Webhook(
        new_secret).verify(after.body, after.headers)
