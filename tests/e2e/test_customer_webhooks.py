"""A tenant's endpoint receives every status event of that tenant, signed per Standard Webhooks."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from postwire_testing.receiver import WebhookReceiver
from postwire_testing.system import DevSystem

from .helpers import cli, send_body

pytestmark = pytest.mark.e2e


async def test_status_events_reach_the_tenant_endpoint_signed(system: DevSystem) -> None:
    info = system.info
    with WebhookReceiver() as receiver:
        endpoint = cli(system.mongodb_url, "webhooks", "create", "--tenant", info["tenant_id"],
                       receiver.url)
        assert endpoint["secret"].startswith("whsec_")
        # webhook-fanout re-reads a tenant's endpoints every ENDPOINT_CACHE_SECONDS (1 s): a new
        # endpoint receives the events that happen after that.
        await asyncio.sleep(1.5)
        auth = {"Authorization": f"Bearer {info['api_key']}"}
        async with httpx.AsyncClient(base_url=info["gateway"], timeout=10) as client:
            body = {**send_body(info["sender_id"]), "metadata": {"order": "A-1"}}
            r = await client.post("/v1/sms/send", headers=auth, json=body)
            assert r.status_code == 201, r.text
            message_id = r.json()["data"]["id"]
            failed = await client.post("/v1/sms/send", headers=auth,
                                       json=send_body(info["sender_id"], to="+15005550001"))
            failed_id = failed.json()["data"]["id"]

        def mine(requests: list) -> list:  # type: ignore[type-arg]
            return [q for q in requests if q.json()["data"]["messageId"] in (message_id, failed_id)]

        seen = await receiver.wait_for(lambda rs: len(mine(rs)) >= 3, timeout=30)
        payloads = receiver.verify_all(endpoint["secret"], mine(seen))
    by_type = {(p["data"]["messageId"], p["type"]) for p in payloads}
    assert by_type == {(message_id, "sms_sent"), (message_id, "sms_delivered"),
                       (failed_id, "sms_failed")}
    delivered = next(p for p in payloads if p["type"] == "sms_delivered")
    assert delivered["data"]["status"] == "DELIVERED"
    assert delivered["data"]["metadata"] == {"order": "A-1"}
    assert delivered["data"]["recipient"] == "+447911123456"
    assert delivered["data"]["providerMessageId"]
    ids = [q.headers["webhook-id"] for q in mine(seen)]
    assert len(ids) == len(set(ids)) == 3
