"""Carrier adapters without the network: httpx MockTransport stands in for the carrier and ingest."""

from __future__ import annotations

import asyncio
import json

import httpx
import msgspec
import pytest

from postwire_platform.settings import SettingsError, load_settings
from postwire_sms_dispatcher.carrier import (
    HttpCarrier,
    PermanentCarrierError,
    SubmitRequest,
    TransientCarrierError,
    callback_url,
)
from postwire_sms_dispatcher.sandbox import SandboxCarrier
from postwire_sms_dispatcher.settings import SmsDispatcherSettings
from postwire_testing.proxy import ForwardProxy


def request(to: str = "+447700900123", mid: str = "m1") -> SubmitRequest:
    return SubmitRequest(message_id=mid, sender="Postwire", to=to, text="hi",
                         callback_url=f"http://ingest/dlr?token=t&mid={mid}")


def carrier(handler: httpx.MockTransport | None = None, token: str = "tok") -> HttpCarrier:
    return HttpCarrier("http://carrier/", token, transport=handler)


async def test_http_carrier_speaks_the_protocol() -> None:
    seen: list[httpx.Request] = []

    def handle(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(201, json={"id": "c-1", "status": "accepted"})

    http = carrier(httpx.MockTransport(handle))
    result = await http.submit(request())
    await http.aclose()
    assert result.carrier_id == "c-1"
    req = seen[0]
    assert (req.method, str(req.url)) == ("POST", "http://carrier/messages")
    assert req.headers["authorization"] == "Bearer tok"
    assert req.headers["idempotency-key"] == "m1"
    assert json.loads(req.content) == {"from": "Postwire", "to": "+447700900123", "text": "hi",
                                       "reference": "m1",
                                       "callbackUrl": "http://ingest/dlr?token=t&mid=m1"}


async def test_no_token_means_no_authorization_header() -> None:
    seen: list[httpx.Request] = []

    def handle(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, json={"id": "c-2"})

    http = carrier(httpx.MockTransport(handle), token="")
    assert (await http.submit(request())).carrier_id == "c-2"
    assert "authorization" not in seen[0].headers


@pytest.mark.parametrize(("status", "body", "code"), [
    (400, {"error": "invalid_destination", "message": "no such number"}, "invalid_destination"),
    (422, {"message": "text too long"}, "carrier_http_422"),
    (404, None, "carrier_http_404"),
])
async def test_permanent_rejections(status: int, body: object, code: str) -> None:
    http = carrier(httpx.MockTransport(lambda _: httpx.Response(status, json=body)))
    with pytest.raises(PermanentCarrierError) as caught:
        await http.submit(request())
    assert caught.value.code == code


@pytest.mark.parametrize("status", [429, 500, 502, 503, 401, 408])
async def test_transient_statuses(status: int) -> None:
    http = carrier(httpx.MockTransport(lambda _: httpx.Response(status)))
    with pytest.raises(TransientCarrierError):
        await http.submit(request())


@pytest.mark.parametrize("exc", [httpx.ConnectTimeout("slow"), httpx.ConnectError("refused"),
                                 httpx.ReadTimeout("slow")])
async def test_network_errors_are_transient(exc: Exception) -> None:
    def handle(_: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(TransientCarrierError):
        await carrier(httpx.MockTransport(handle)).submit(request())


async def test_accepted_without_an_id_is_transient() -> None:
    http = carrier(httpx.MockTransport(lambda _: httpx.Response(200, text="OK")))
    with pytest.raises(TransientCarrierError):
        await http.submit(request())


class Taken(Exception):
    """What the dispatcher's lease check raises when the claim is another's."""


async def _taken() -> None:
    raise Taken("the claim is another delivery's")


async def test_http_carrier_sends_nothing_when_the_check_before_the_submit_raises() -> None:
    seen: list[httpx.Request] = []
    checked: list[int] = []

    def handle(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(201, json={"id": "c-1"})

    async def check() -> None:
        checked.append(len(seen))

    http = carrier(httpx.MockTransport(handle))
    with pytest.raises(Taken):
        await http.submit(msgspec.structs.replace(request(), before_submit=_taken))
    assert seen == []
    assert (await http.submit(msgspec.structs.replace(request(), before_submit=check))).carrier_id
    assert checked == [0] and len(seen) == 1  # checked right before the request, once
    await http.aclose()


def test_callback_url_carries_token_and_message_id() -> None:
    assert callback_url("http://i/dlr", "a b&c", "m1") == "http://i/dlr?token=a+b%26c&mid=m1"
    assert callback_url("http://i/dlr?x=1", "t", "m1") == "http://i/dlr?x=1&token=t&mid=m1"


class Receipts:
    def __init__(self) -> None:
        self.posted: list[dict[str, str]] = []
        self.urls: list[str] = []

    def __call__(self, req: httpx.Request) -> httpx.Response:
        self.posted.append(json.loads(req.content))
        self.urls.append(str(req.url))
        return httpx.Response(200, json={"success": True})


async def test_sandbox_is_idempotent_and_posts_one_receipt() -> None:
    receipts = Receipts()
    sandbox = SandboxCarrier(dlr_delay=0.01, transport=httpx.MockTransport(receipts))
    first = await sandbox.submit(request())
    again = await sandbox.submit(request())
    assert first == again
    for _ in range(100):
        if receipts.posted:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    await sandbox.aclose()
    assert len(receipts.posted) == 1
    posted = receipts.posted[0]
    assert (posted["id"], posted["reference"], posted["stat"]) == (first.carrier_id, "m1", "DELIVRD")
    assert f"id:{first.carrier_id} " in posted["receipt"] and "stat:DELIVRD" in posted["receipt"]
    assert receipts.urls == ["http://ingest/dlr?token=t&mid=m1"]


async def test_sandbox_magic_numbers() -> None:
    receipts = Receipts()
    sandbox = SandboxCarrier(dlr_delay=0.01, slow_delay=30, transport=httpx.MockTransport(receipts))
    with pytest.raises(PermanentCarrierError) as caught:
        await sandbox.submit(request("+15005550001", "rej"))
    assert caught.value.code == "invalid_destination"
    for _ in range(2):
        with pytest.raises(TransientCarrierError):
            await sandbox.submit(request("+15005550005", "flaky"))
    await sandbox.submit(request("+15005550005", "flaky"))
    await sandbox.submit(request("+15005550002", "undeliv"))
    await sandbox.submit(request("+15005550004", "silent"))
    await sandbox.submit(request("+15005550003", "slow"))
    for _ in range(100):
        if len(receipts.posted) == 2:
            break
        await asyncio.sleep(0.01)
    assert sandbox.pending_receipts == 1  # the slow one, cancelled on close
    await sandbox.aclose(grace=0.05)
    assert sandbox.pending_receipts == 0
    assert sorted((p["reference"], p["stat"]) for p in receipts.posted) == [
        ("flaky", "DELIVRD"), ("undeliv", "UNDELIV")]


async def test_sandbox_accepts_nothing_when_the_check_before_the_submit_raises() -> None:
    receipts = Receipts()
    sandbox = SandboxCarrier(dlr_delay=0.01, transport=httpx.MockTransport(receipts))
    with pytest.raises(Taken):
        await sandbox.submit(msgspec.structs.replace(request(), before_submit=_taken))
    assert sandbox.pending_receipts == 0
    await sandbox.aclose()


def test_settings_from_the_environment() -> None:
    s = load_settings(SmsDispatcherSettings, {"SMS_RETRY_DELAYS": "[1, 5]",
                                              "DISPATCH_LEASE_SECONDS": "7"})
    assert (s.http_port, s.service_name, s.sms_retry_delays) == (8083, "sms-dispatcher", [1, 5])
    assert s.delay_steps() == [1, 5, 7]
    assert SmsDispatcherSettings().sms_retry_delays == [2, 10, 60, 300]
    with pytest.raises(SettingsError, match=r"^SMS_RETRY_DELAYS:"):
        load_settings(SmsDispatcherSettings, {"SMS_RETRY_DELAYS": "[0]"})
    with pytest.raises(SettingsError, match=r"^DISPATCH_LEASE_SECONDS:"):
        load_settings(SmsDispatcherSettings, {"DISPATCH_LEASE_SECONDS": "soon"})


async def test_the_http_carrier_goes_through_the_proxy_the_environment_names(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """HttpCarrier's own transport (SpreadTransport) still takes the operator's egress proxy from
    HTTP(S)_PROXY, as httpx's default client would."""
    async with ForwardProxy(b'{"id": "c-9", "status": "accepted"}', status=201) as proxy:
        proxy.install(monkeypatch)
        http = HttpCarrier("http://carrier.example/", "tok")  # no such host: only the proxy answers
        try:
            result = await http.submit(request())
        finally:
            await http.aclose()
    assert result.carrier_id == "c-9"
    assert proxy.request_lines == [b"POST http://carrier.example/messages HTTP/1.1"]
