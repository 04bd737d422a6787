"""The fake carrier: protocol answers, idempotency, knobs and receipts to a real callback server."""

from __future__ import annotations

from typing import Any

import httpx
from litestar import Litestar, Request, post

from postwire_testing.fake_carrier import FakeCarrier
from postwire_testing.servers import ThreadedServer


def receiver(got: list[tuple[str, dict[str, Any]]]) -> Litestar:
    @post("/dlr", status_code=200)
    async def dlr(request: Request[Any, Any, Any]) -> dict[str, bool]:
        got.append((request.url.query, await request.json()))
        return {"success": True}

    return Litestar(route_handlers=[dlr])


def submission(to: str = "+447700900123", ref: str = "m1", callback: str = "") -> dict[str, str]:
    return {"from": "Postwire", "to": to, "text": "hi", "reference": ref, "callbackUrl": callback}


async def test_accepts_once_per_key_and_calls_back() -> None:
    got: list[tuple[str, dict[str, Any]]] = []
    async with ThreadedServer(receiver(got)) as hook, FakeCarrier(delay=0.01) as fake, \
            httpx.AsyncClient(base_url=fake.url) as http:
        callback = f"{hook.url}/dlr?token=t&mid=m1"
        first = await http.post("/messages", json=submission(callback=callback),
                                headers={"Idempotency-Key": "m1"})
        again = await http.post("/messages", json=submission(callback=callback),
                                headers={"Idempotency-Key": "m1"})
        assert first.status_code == 200 and first.json() == again.json()
        assert first.json()["status"] == "accepted"
        await fake.wait_for(lambda: len(fake.receipts) == 1)
        await fake.wait_for(lambda: len(got) == 1)
    assert fake.count_for("m1") == 1 and len(fake.requests) == 2
    sub = fake.submissions[0]
    assert (sub.to, sub.text, sub.sender, sub.carrier_id) == (
        "+447700900123", "hi", "Postwire", first.json()["id"])
    query, body = got[0]
    assert query == "token=t&mid=m1"
    assert (body["id"], body["reference"], body["stat"]) == (sub.carrier_id, "m1", "DELIVRD")
    assert "stat:DELIVRD" in body["receipt"] and fake.receipts[0].status_code == 200


async def test_knobs_fail_reject_and_stat() -> None:
    async with FakeCarrier(reject_numbers={"+447700900666"}, dlr_stat=None) as fake, \
            httpx.AsyncClient(base_url=fake.url) as http:
        fake.fail_next(2, status=503)
        statuses = [(await http.post("/messages", json=submission(ref="m2"),
                                     headers={"Idempotency-Key": "m2"})).status_code
                    for _ in range(3)]
        assert statuses == [503, 503, 200]
        rejected = await http.post("/messages", json=submission("+447700900666", "m3"))
        assert (rejected.status_code, rejected.json()["error"]) == (400, "invalid_destination")
        assert fake.count_for("m2") == 1 and fake.count_for("m3") == 0
    assert fake.receipts == []


def test_sync_use_and_token_check() -> None:
    with FakeCarrier(token="tok") as fake:
        bad = httpx.post(f"{fake.url}/messages", json=submission())
        ok = httpx.post(f"{fake.url}/messages", json=submission(),
                        headers={"Authorization": "Bearer tok"})
        assert (bad.status_code, ok.status_code) == (401, 200)
