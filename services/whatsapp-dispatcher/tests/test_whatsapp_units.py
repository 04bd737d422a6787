"""Pacing with a hand-driven clock, Graph answers mapped to outcomes, the sandbox's notifications."""

from __future__ import annotations

import json

import httpx
import pytest

from postwire_platform.settings import SettingsError
from postwire_testing.proxy import ForwardProxy
from postwire_whatsapp import webhooks
from postwire_whatsapp_dispatcher.graph import (
    GraphClient,
    GraphRefused,
    GraphSend,
    GraphUnavailable,
    interpret,
)
from postwire_whatsapp_dispatcher.pacing import Pacer, Rate, delay_step
from postwire_whatsapp_dispatcher.sandbox import SandboxClient
from postwire_whatsapp_dispatcher.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_number_bucket_admits_a_burst_then_reserves_slots_in_order() -> None:
    clock = Clock()
    pacer = Pacer(Rate(10, 2), Rate(1000, 1000), max_wait=0.5, max_waiting=100, clock=clock)
    assert [pacer.admit("n1", f"r{i}").wait for i in range(2)] == [0.0, 0.0]
    third, fourth = pacer.admit("n1", "r2"), pacer.admit("n1", "r3")
    assert third.granted and third.wait == pytest.approx(0.1)
    assert fourth.granted and fourth.wait == pytest.approx(0.2)
    assert pacer.admit("n2", "r0") == pacer.admit("n2", "r1")  # another number has its own bucket
    clock.now += 10
    assert pacer.admit("n1", "r4").wait == 0.0


def test_a_slot_too_far_away_is_not_taken() -> None:
    clock = Clock()
    pacer = Pacer(Rate(1000, 1000), Rate(0.25, 1), max_wait=1.0, max_waiting=100, clock=clock)
    assert pacer.admit("n1", "ada").wait == 0.0
    refused = pacer.admit("n1", "ada")
    assert not refused.granted and refused.wait == pytest.approx(4.0)
    assert pacer.admit("n1", "bob").granted  # other recipients are not held back
    clock.now += 3.5
    late = pacer.admit("n1", "ada")
    assert late.granted and late.wait == pytest.approx(0.5)


def test_in_process_waiters_per_number_are_capped() -> None:
    clock = Clock()
    pacer = Pacer(Rate(10, 1), Rate(1000, 1000), max_wait=5.0, max_waiting=1, clock=clock)
    pacer.admit("n1", "a")
    assert pacer.admit("n1", "b").granted
    pacer.waiting("n1", +1)
    assert not pacer.admit("n1", "c").granted
    pacer.waiting("n1", -1)
    assert pacer.admit("n1", "c").granted


def test_throttles_empty_the_bucket_for_a_while() -> None:
    clock = Clock()
    pacer = Pacer(Rate(10, 10), Rate(1, 5), max_wait=0.0, max_waiting=10, clock=clock)
    pacer.throttle_number("n1", 1.0)
    assert pacer.admit("n1", "a").wait == pytest.approx(1.1)
    pacer.throttle_recipient("n2", "a", 6.0)
    assert pacer.admit("n2", "a").wait == pytest.approx(7.0)
    assert pacer.admit("n2", "b").granted


def test_delay_step_picks_the_shortest_long_enough_queue() -> None:
    assert delay_step([1.0, 3.0, 10.0], 0.2) == 1.0
    assert delay_step([1.0, 3.0, 10.0], 3.0) == 3.0
    assert delay_step([1.0, 3.0, 10.0], 60.0) == 10.0


def _response(status: int, body: object) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode())


def test_graph_answers_are_interpreted() -> None:
    ok = interpret(_response(200, {"messaging_product": "whatsapp", "contacts": [
        {"input": "15551234567", "wa_id": "15551234567"}], "messages": [{"id": "wamid.X"}]}))
    assert (ok.wamid, ok.wa_id) == ("wamid.X", "15551234567")
    with pytest.raises(GraphRefused) as refused:
        interpret(_response(400, {"error": {"message": "(#131026) Message undeliverable",
                                            "code": 131026, "type": "OAuthException"}}))
    assert refused.value.error.code == 131026 and refused.value.http_status == 400
    for status in (500, 502, 503, 429):
        with pytest.raises(GraphUnavailable):
            interpret(httpx.Response(status, content=b"<html>busy</html>"))
    with pytest.raises(GraphRefused) as odd:
        interpret(httpx.Response(404, content=b"not found"))
    assert odd.value.error.code == 0
    with pytest.raises(GraphRefused):
        interpret(_response(200, {"messages": []}))


def test_settings_fit_together() -> None:
    with pytest.raises(SettingsError, match="SECRET_KEYS"):
        Settings(whatsapp_cloud_api_enabled=True).check()
    with pytest.raises(SettingsError, match="WHATSAPP_ACCESS_TOKEN"):
        Settings(whatsapp_cloud_api_enabled=True, secret_keys=["A" * 43 + "="],
                 whatsapp_phone_number_id="1").check()
    assert Settings().check() is None
    assert Settings().delay_steps() == [1.0, 2.0, 3.0, 10.0, 30.0, 60.0, 300.0]


async def test_the_sandbox_answers_and_notifies_signed_statuses() -> None:
    posted: list[httpx.Request] = []

    def hook(request: httpx.Request) -> httpx.Response:
        posted.append(request)
        return httpx.Response(200, json={"success": True})

    sandbox = SandboxClient(webhook_url="http://ingest.test/v1/webhooks/whatsapp", app_secret="s3",
                            status_delay=0.0, transport=httpx.MockTransport(hook))
    request = GraphSend(message_id="m1", phone_number_id="100", token="sandbox", to="14155552671",
                        body={"type": "text"})
    first = await sandbox.send(request)
    assert (await sandbox.send(request)).wamid == first.wamid  # resubmission: same answer
    with pytest.raises(GraphRefused) as refused:
        await sandbox.send(GraphSend(message_id="m2", phone_number_id="100", token="sandbox",
                                     to="15005550001", body={"type": "text"}))
    assert refused.value.error.code == 131026
    await sandbox.aclose(grace=5.0)
    assert len(posted) == 3
    statuses = []
    for req in posted:
        assert webhooks.signature_ok("s3", req.content, req.headers[webhooks.SIGNATURE_HEADER])
        value = webhooks.envelope_decoder.decode(req.content).entry[0].changes[0].value
        assert value.metadata.phone_number_id == "100"
        statuses += [(s.id, s.status, s.biz_opaque_callback_data) for s in value.statuses]
    assert statuses == [(first.wamid, s, "m1") for s in ("sent", "delivered", "read")]


async def test_the_graph_client_sends_no_cookie_back() -> None:
    """One client calls Meta for every tenant: a cookie set on one tenant's call must not ride along
    with the next call, that tenant's or another's."""
    seen: list[str | None] = []

    def graph(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(200, headers={"set-cookie": "fr=tenant-a-session; Path=/"},
                              json={"contacts": [{"input": "14155552671", "wa_id": "14155552671"}],
                                    "messages": [{"id": f"wamid.{len(seen)}"}]})

    client = GraphClient("https://graph.test", "v21.0", transport=httpx.MockTransport(graph))
    for token, line in (("token-a", "100"), ("token-a", "100"), ("token-b", "200")):
        await client.send(GraphSend(message_id="m", phone_number_id=line, token=token,
                                    to="14155552671", body={"type": "text"}))
    await client.aclose()
    assert seen == [None, None, None]


async def test_the_graph_client_goes_through_the_proxy_the_environment_names(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An operator whose egress goes through a proxy sets HTTP(S)_PROXY; the Graph client's own
    transport (SpreadTransport) must still use it, as httpx's default client would."""
    body = b'{"contacts":[{"input":"14155552671","wa_id":"14155552671"}],"messages":[{"id":"wamid.P"}]}'
    async with ForwardProxy(body) as proxy:
        proxy.install(monkeypatch)
        client = GraphClient("http://graph.example", "v21.0")  # no such host: only the proxy answers
        try:
            result = await client.send(GraphSend(message_id="m", phone_number_id="100", token="t",
                                                 to="14155552671", body={"type": "text"}))
        finally:
            await client.aclose()
    assert result.wamid == "wamid.P"
    assert proxy.request_lines == [b"POST http://graph.example/v21.0/100/messages HTTP/1.1"]
