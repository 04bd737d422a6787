"""RabbitMQ unreachable at send time: 503, nothing half-written; afterwards sends work, no restart."""

from __future__ import annotations

import asyncio
import subprocess
import time
from urllib.parse import urlsplit

import httpx
import pytest

from postwire_testing.system import DevSystem

from .helpers import send_body, wait_status

pytestmark = pytest.mark.e2e


def _ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


async def test_send_while_rabbitmq_is_unreachable_is_503_and_recovers(system: DevSystem) -> None:
    vhost = urlsplit(system.env["AMQP_URL"]).path.lstrip("/")
    if not vhost:
        pytest.skip("needs a vhost of its own to cut off")
    info = system.info
    auth = {"Authorization": f"Bearer {info['api_key']}"}
    async with httpx.AsyncClient(base_url=info["gateway"], timeout=30) as client:
        before = (await client.get("/v1/sms", headers=auth)).json()["pagination"]["total"]
        # Cut this system off from RabbitMQ: no permission on its vhost, every connection closed, so
        # reconnects are refused until the permission returns. The shared broker itself stays up.
        _ctl("clear_permissions", "-p", vhost, "guest")
        try:
            _ctl("close_all_connections", "--vhost", vhost, "postwire outage test")
            await asyncio.sleep(1.0)
            r = await client.post("/v1/sms/send", headers=auth, json=send_body(info["sender_id"]))
            assert r.status_code == 503, r.text
            body = r.json()
            assert body == {"success": False, "error": "service_unavailable", "code": 503,
                            "message": body["message"]}
            assert int(r.headers["Retry-After"]) > 0
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["broker"] is False
            after = (await client.get("/v1/sms", headers=auth)).json()["pagination"]["total"]
            assert after == before, "a refused send left a message behind"
        finally:
            _ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")

        deadline = time.monotonic() + 60
        while True:
            r = await client.post("/v1/sms/send", headers=auth, json=send_body(info["sender_id"]))
            if r.status_code == 201:
                break
            assert r.status_code == 503, r.text
            assert time.monotonic() < deadline, "sends did not recover after RabbitMQ came back"
            await asyncio.sleep(0.5)
        await wait_status(client, info["api_key"], r.json()["data"]["id"], {"DELIVERED"}, timeout=60)
