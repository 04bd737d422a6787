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


class LiveLoad:
    """A live key of the demo tenant, and the sends and checks a load test needs."""

    def __init__(self, system: DevSystem, client: httpx.AsyncClient) -> None:
        info = system.info
        self.sender_id = info["sender_id"]
        self.key = cli(system.mongodb_url, "keys", "create", "--tenant", info["tenant_id"],
                       "--scopes", "send:sms,read:sms", "--live",
                       "--rate-limit", "600000/10000")["key"]
        self.client = client
        self.auth = {"Authorization": f"Bearer {self.key}"}

    def send(self, count: int, prefix: str) -> asyncio.Future[list[str]]:
        """Start ``count`` sends, 20 in flight; the future yields the accepted ids."""
        semaphore = asyncio.Semaphore(20)

        async def one(i: int) -> str:
            async with semaphore:
                r = await self.client.post("/v1/sms/send", headers=self.auth, json=send_body(
                    self.sender_id, to=f"{prefix}{i:05d}", body=f"load {i}"))
                assert r.status_code == 201, r.text
                return str(r.json()["data"]["id"])

        return asyncio.gather(*(one(i) for i in range(count)))

    async def final_statuses(self, ids: list[str]) -> set[str]:
        for message_id in ids:
            await wait_status(self.client, self.key, message_id, {"DELIVERED", "FAILED"}, timeout=120)
        answers = await asyncio.gather(*(
            self.client.get(f"/v1/sms/{i}", headers=self.auth) for i in ids))
        return {a.json()["data"]["status"] for a in answers}


async def _wait_submissions(carrier: FakeCarrier, at_least: int) -> None:
    while len(carrier.submissions) < at_least:
        await asyncio.sleep(0.05)


async def test_killing_the_dispatcher_mid_load_loses_nothing_and_sends_nothing_twice(
    system: DevSystem, carrier: FakeCarrier
) -> None:
    async with httpx.AsyncClient(base_url=system.info["gateway"], timeout=30) as client:
        load = LiveLoad(system, client)
        sending = load.send(300, "+4479111")
        await _wait_submissions(carrier, len(carrier.submissions) + 30)
        old = system.kill9("sms-dispatcher")
        ids = await sending
        await asyncio.to_thread(system.wait_restarted, "sms-dispatcher", old)
        assert await load.final_statuses(ids) == {"DELIVERED"}
    assert all(carrier.count_for(i) == 1 for i in ids)


async def test_sigterm_to_the_dispatcher_mid_load_finishes_or_returns_in_flight_work(
    system: DevSystem, carrier: FakeCarrier
) -> None:
    async with httpx.AsyncClient(base_url=system.info["gateway"], timeout=30) as client:
        load = LiveLoad(system, client)
        sending = load.send(200, "+4479112")
        await _wait_submissions(carrier, len(carrier.submissions) + 20)
        # supervisorctl restart: SIGTERM, wait for the graceful exit, start again
        restarted = await asyncio.to_thread(system.supervisorctl, "restart", "sms-dispatcher")
        assert "started" in restarted
        ids = await sending
        assert await load.final_statuses(ids) == {"DELIVERED"}
    assert all(carrier.count_for(i) == 1 for i in ids)
