"""One SMS, the whole way: gateway → sms-dispatcher → carrier → provider-ingest → reporting."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from postwire_testing.fake_carrier import FakeCarrier
from postwire_testing.system import DevSystem

from .helpers import cli, send_body, wait_status

pytestmark = pytest.mark.e2e


async def test_bad_input_changes_nothing(system: DevSystem) -> None:
    info = system.info
    url = system.mongodb_url
    read_only = cli(url, "keys", "create", "--tenant", info["tenant_id"], "--scopes", "read:sms")["key"]
    key = info["api_key"]
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=info["gateway"], timeout=10) as client:
        before = (await client.get("/v1/sms", headers=auth)).json()["pagination"]["total"]
        cases = [
            ({**auth, "Content-Type": "application/json"}, b'{"to": ', 400, "invalid_json", None),
            ({}, send_body(info["sender_id"]), 401, "unauthorized", None),
            ({"Authorization": "Bearer pw_test_nope"}, send_body(info["sender_id"]), 401,
             "unauthorized", None),
            ({"Authorization": f"Bearer {read_only}"}, send_body(info["sender_id"]), 403,
             "forbidden", None),
            (auth, send_body(info["sender_id"], to="+44123"), 422, "invalid_phone_number", "to"),
            (auth, send_body("NotMine"), 422, "sender_id_not_approved", "senderId"),
        ]
        for headers, body, status, error, field in cases:
            if isinstance(body, bytes):
                r = await client.post("/v1/sms/send", headers=headers, content=body)
            else:
                r = await client.post("/v1/sms/send", headers=headers, json=body)
            assert r.status_code == status, (status, r.text)
            payload = r.json()
            assert payload["success"] is False and payload["error"] == error
            assert payload["code"] == status and payload["message"]
            assert payload.get("field") == field
        await asyncio.sleep(1.0)
        after = (await client.get("/v1/sms", headers=auth)).json()["pagination"]["total"]
    assert after == before


async def test_killing_the_dispatcher_mid_load_loses_nothing_and_sends_nothing_twice(
    system: DevSystem, carrier: FakeCarrier
) -> None:
    info = system.info
    live = cli(system.mongodb_url, "keys", "create", "--tenant", info["tenant_id"], "--scopes",
               "send:sms,read:sms", "--live")["key"]
    auth = {"Authorization": f"Bearer {live}"}
    count = 300
    async with httpx.AsyncClient(base_url=info["gateway"], timeout=30) as client:
        semaphore = asyncio.Semaphore(20)

        async def send(i: int) -> str:
            async with semaphore:
                r = await client.post("/v1/sms/send", headers=auth, json=send_body(
                    info["sender_id"], to=f"+4479111{i:05d}", body=f"load {i}"))
                assert r.status_code == 201, r.text
                return str(r.json()["data"]["id"])

        sending = asyncio.gather(*(send(i) for i in range(count)))
        while len(carrier.submissions) < 30:
            await asyncio.sleep(0.05)
        old = system.kill9("sms-dispatcher")
        ids = await sending
        await asyncio.to_thread(system.wait_restarted, "sms-dispatcher", old)
        for message_id in ids:
            await wait_status(client, live, message_id, {"DELIVERED", "FAILED"}, timeout=120)
        statuses = await asyncio.gather(*(
            client.get(f"/v1/sms/{i}", headers=auth) for i in ids))
    assert {s.json()["data"]["status"] for s in statuses} == {"DELIVERED"}
    assert all(carrier.count_for(i) == 1 for i in ids)


async def test_sigterm_to_the_dispatcher_mid_load_finishes_or_returns_in_flight_work(
    system: DevSystem, carrier: FakeCarrier
) -> None:
    info = system.info
    live = cli(system.mongodb_url, "keys", "create", "--tenant", info["tenant_id"], "--scopes",
               "send:sms,read:sms", "--live")["key"]
    auth = {"Authorization": f"Bearer {live}"}
    async with httpx.AsyncClient(base_url=info["gateway"], timeout=30) as client:
        semaphore = asyncio.Semaphore(20)

        async def send(i: int) -> str:
            async with semaphore:
                r = await client.post("/v1/sms/send", headers=auth, json=send_body(
                    info["sender_id"], to=f"+4479112{i:05d}", body=f"graceful {i}"))
                assert r.status_code == 201, r.text
                return str(r.json()["data"]["id"])

        sending = asyncio.gather(*(send(i) for i in range(200)))
        start = len(carrier.submissions)
        while len(carrier.submissions) < start + 20:
            await asyncio.sleep(0.05)
        # supervisorctl restart: SIGTERM, wait for the graceful exit, start again
        restarted = await asyncio.to_thread(system.supervisorctl, "restart", "sms-dispatcher")
        assert "started" in restarted
        ids = await sending
        for message_id in ids:
            await wait_status(client, live, message_id, {"DELIVERED", "FAILED"}, timeout=120)
        statuses = await asyncio.gather(*(client.get(f"/v1/sms/{i}", headers=auth) for i in ids))
    assert {s.json()["data"]["status"] for s in statuses} == {"DELIVERED"}
    assert all(carrier.count_for(i) == 1 for i in ids)
