"""WhatsApp under `make run`: a test key goes to the sandbox, whose signed notifications come back
through provider-ingest's /v1/webhooks/whatsapp and reporting, as Meta's would."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from postwire_testing.system import DevSystem

pytestmark = pytest.mark.e2e


async def wait_whatsapp(client: httpx.AsyncClient, auth: dict[str, str], message_id: str,
                        status: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = await client.get(f"/v1/whatsapp/{message_id}", headers=auth)
        if r.status_code == 200:
            last = r.json()["data"]
            if last["status"] == status:
                return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"{message_id} never reached {status}; last seen {last}")


async def test_a_test_key_whatsapp_message_is_sent_delivered_and_read_in_the_sandbox(
        system: DevSystem) -> None:
    info = system.info
    auth = {"Authorization": f"Bearer {info['api_key']}"}
    async with httpx.AsyncClient(base_url=info["gateway"], timeout=10) as client:
        ok = await client.post("/v1/whatsapp/send", headers=auth, json={
            "to": "+447911123456", "template": {"name": "order_update", "language": "en_US",
                                                "bodyParameters": ["#12345"]}})
        refused = await client.post("/v1/whatsapp/send", headers=auth,
                                    json={"to": "+15005550001", "text": "hello"})
        assert ok.status_code == refused.status_code == 201, (ok.text, refused.text)
        read = await wait_whatsapp(client, auth, ok.json()["data"]["id"], "READ")
        failed = await wait_whatsapp(client, auth, refused.json()["data"]["id"], "FAILED")
        timeline = (await client.get(f"/v1/whatsapp/{read['id']}/timeline", headers=auth)).json()
    assert read["providerMessageId"].startswith("wamid.") and read["readAt"]
    sources = {(e["status"], e["source"]) for e in timeline["data"]}
    assert {("SENT", "meta-webhook"), ("DELIVERED", "meta-webhook"),
            ("READ", "meta-webhook")} <= sources
    assert failed["errorCode"] == "131026"
