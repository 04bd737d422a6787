"""The DLR endpoint against the real broker: tokens, JSON and text receipts, switches, outages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from postwire_contracts.status import Status
from postwire_platform.broker import BrokerUnavailable
from postwire_provider_ingest.app import create_app
from postwire_provider_ingest.settings import ProviderIngestSettings
from postwire_testing.taps import EventTap, event_tap

DLR = "/v1/webhooks/sms/dlr"
RECEIPT = ("id:c-77 sub:001 dlvrd:001 submit date:2611211200 done date:261121120005 "
           "stat:DELIVRD err:000 text:Your code")


@pytest.fixture
async def tap(amqp_url: str) -> AsyncIterator[EventTap]:
    async with event_tap(amqp_url) as t:
        yield t


def settings(amqp_url: str, mongodb_url: str, db_name: str, **kw: Any) -> ProviderIngestSettings:
    return ProviderIngestSettings(amqp_url=amqp_url, mongodb_url=mongodb_url,
                                  mongodb_database=db_name, sms_dlr_token="s3cret",
                                  shutdown_timeout=5.0, **kw)


@pytest.fixture
async def client(amqp_url: str, mongodb_url: str,
                 db_name: str) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(create_app(settings(amqp_url, mongodb_url, db_name))) as c:
        yield c


async def test_bad_or_missing_token_is_401_and_publishes_nothing(
        client: AsyncTestClient[Any], tap: EventTap) -> None:
    body = {"id": "c-bad", "stat": "DELIVRD"}
    for params in ({"token": "wrong"}, {}, {"token": ""}):
        r = await client.post(DLR, params=params, json=body)
        assert r.status_code == 401
        assert r.json() == {"success": False, "error": "unauthorized",
                            "message": "missing or invalid callback token", "code": 401}
    ok = await client.post(DLR, params={"token": "s3cret"}, json={"id": "c-good", "stat": "ENROUTE"})
    assert ok.status_code == 200
    events = await tap.wait_count(1)
    assert [e.provider_message_id for e in events] == ["c-good"]


async def test_json_receipt_is_normalised_and_published(
        client: AsyncTestClient[Any], tap: EventTap) -> None:
    body = {"id": "c-77", "reference": "m-ref", "stat": "DELIVRD", "err": "000",
            "submitDate": "2026-11-21T12:00:00+00:00", "doneDate": "2026-11-21T12:00:04Z",
            "receipt": RECEIPT, "extra": {"ignored": True}}
    r = await client.post(DLR, params={"token": "s3cret", "mid": "m-1"}, json=body)
    assert (r.status_code, r.json()) == (200, {"success": True})
    [event] = await tap.wait_count(1)
    assert event.event_id == "dlr:c-77:DELIVRD"
    assert (event.status, event.message_id, event.provider_message_id) == (
        Status.DELIVERED, "m-1", "c-77")
    assert (event.provider_status, event.source, event.raw) == ("DELIVRD", "carrier-dlr", RECEIPT)
    assert event.occurred_at == datetime(2026, 11, 21, 12, 0, 4, tzinfo=UTC)
    assert event.error_code is None


async def test_text_form_receipts_are_parsed(client: AsyncTestClient[Any], tap: EventTap) -> None:
    undeliv = RECEIPT.replace("id:c-77", "id:c-78").replace("stat:DELIVRD err:000",
                                                              "Stat:UNDELIV Err:005")
    r1 = await client.post(DLR, params={"token": "s3cret"}, json={"receipt": undeliv})
    r2 = await client.post(DLR, params={"token": "s3cret", "mid": "m-2"}, content=RECEIPT,
                           headers={"Content-Type": "text/plain"})
    assert (r1.status_code, r2.status_code) == (200, 200)
    failed, delivered = await tap.wait_count(2)
    assert (failed.event_id, failed.status, failed.error_code) == (
        "dlr:c-78:UNDELIV", Status.FAILED, "UNDELIV")
    assert failed.error_reason == "undeliverable (err 005)" and failed.message_id is None
    assert failed.occurred_at == datetime(2026, 11, 21, 12, 0, 5, tzinfo=UTC)
    assert failed.raw == undeliv
    assert (delivered.status, delivered.message_id, delivered.raw) == (
        Status.DELIVERED, "m-2", RECEIPT)


async def test_malformed_receipts_are_refused(client: AsyncTestClient[Any]) -> None:
    params = {"token": "s3cret"}
    assert (await client.post(DLR, params=params, content=b"{nope")).status_code == 400
    r = await client.post(DLR, params=params, json={"id": "c-1"})
    assert (r.status_code, r.json()["error"]) == (422, "invalid_receipt")
    assert (await client.post(DLR, params=params, json={"id": ["x"]})).status_code == 422


async def test_broker_down_is_503_so_the_carrier_retries(client: AsyncTestClient[Any]) -> None:
    class Down:
        async def publish(self, *args: Any, **kwargs: Any) -> None:
            raise BrokerUnavailable("no confirm")

    client.app.state.runtime.publisher = Down()
    r = await client.post(DLR, params={"token": "s3cret"}, json={"id": "c-1", "stat": "DELIVRD"})
    assert (r.status_code, r.json()["error"]) == (503, "service_unavailable")
    assert r.headers["retry-after"] == "5"


async def test_disabled_endpoint_is_404(amqp_url: str, mongodb_url: str, db_name: str) -> None:
    app = create_app(settings(amqp_url, mongodb_url, db_name, sms_dlr_enabled=False))
    async with AsyncTestClient(app) as c:
        r = await c.post(DLR, params={"token": "s3cret"}, json={"id": "c-1", "stat": "DELIVRD"})
        assert r.status_code == 404
