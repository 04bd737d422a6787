"""GET /v1/stats and /v1/emails/stats over the rollups reporting keeps (stored here as it writes them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts.stats import bucket_key, bucket_of, rollup_id
from postwire_gateway.app import create_app
from postwire_gateway.settings import GatewaySettings
from postwire_platform import tenancy
from postwire_platform.mongo import STATS_DAILY, Document

from .gateway_support import Tenant

Client = AsyncTestClient[Any]
NOW = datetime(2026, 11, 21, 15, 30, tzinfo=UTC)
TODAY = NOW.date()


def hist(*samples_ms: float) -> dict[str, int]:
    out: dict[str, int] = {}
    for sample in samples_ms:
        key = bucket_key(bucket_of(sample))
        out[key] = out.get(key, 0) + 1
    return out


def rollup_doc(tenant: str, channel: str, day: date, *, live: bool = True,
               counts: dict[str, int] | None = None, events: dict[str, int] | None = None,
               sent: dict[str, int] | None = None, delivered: dict[str, int] | None = None) -> Document:
    latency: dict[str, Any] = {}
    if sent:
        latency["sent"] = sent
    if delivered:
        latency["delivered"] = delivered
    doc: Document = {"_id": rollup_id(tenant, channel, day, live), "tenant_id": tenant,
                     "channel": channel, "day": day.isoformat(), "live": live,
                     "counts": counts or {}, "events": events or {}, "updated_at": NOW}
    if latency:
        doc["latency"] = latency
    return doc


@pytest.fixture
async def stats_client(settings: GatewaySettings,
                       db: AsyncDatabase[Document]) -> AsyncIterator[Client]:
    """The gateway with its clock at ``NOW``."""
    async with AsyncTestClient(create_app(settings, clock=lambda: NOW)) as client:
        yield client


@pytest.fixture
async def keys(db: AsyncDatabase[Document]) -> dict[str, str]:
    """Two tenants' stats keys and a key without the scope."""
    first = await tenancy.create_tenant(db, "Acme")
    second = await tenancy.create_tenant(db, "Other")
    stats, _ = await tenancy.create_key(db, first["_id"], ["stats:read"], mode="live")
    other, _ = await tenancy.create_key(db, second["_id"], ["stats:read"], mode="test")
    reader, _ = await tenancy.create_key(db, first["_id"], ["read:sms", "read:email"], mode="live")
    return {"tenant": first["_id"], "other_tenant": second["_id"], "stats": stats, "other": other,
            "reader": reader}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def seed(db: AsyncDatabase[Document], keys: dict[str, str]) -> None:
    tenant, other = keys["tenant"], keys["other_tenant"]
    await db[STATS_DAILY].insert_many([
        rollup_doc(tenant, "sms", date(2026, 11, 20),
                   counts={"accepted": 10, "processing": 10, "sent": 9, "delivered": 8, "failed": 1},
                   events={"sms_sent": 9, "sms_delivered": 8, "sms_failed": 1},
                   sent=hist(*[100] * 9), delivered=hist(*[1000] * 7, 60000)),
        rollup_doc(tenant, "sms", date(2026, 11, 21), live=False,
                   counts={"accepted": 2, "processing": 2, "sent": 2},
                   events={"sms_sent": 2}, sent=hist(100, 100)),
        rollup_doc(tenant, "email", date(2026, 11, 21),
                   counts={"accepted": 4, "sent": 4, "delivered": 3, "failed": 1},
                   events={"email_delivered": 3, "email_opened": 5, "email_clicked": 2,
                           "email_hard_bounce": 1,
                           "email_soft_bounce": 2, "email_spam_complaint": 1},
                   delivered=hist(2000, 2000, 2000)),
        rollup_doc(tenant, "sms", date(2026, 11, 1), counts={"accepted": 99}),  # outside the window
        rollup_doc(other, "sms", date(2026, 11, 21), counts={"accepted": 1000, "sent": 1000}),
    ])


async def test_stats_by_channel_status_and_day_with_latency_percentiles(
        stats_client: Client, db: AsyncDatabase[Document], keys: dict[str, str]) -> None:
    await seed(db, keys)
    response = await stats_client.get("/v1/stats", headers=bearer(keys["stats"]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    data = body["data"]
    assert (data["dateFrom"], data["dateTo"], data["mode"]) == ("2026-11-15", "2026-11-21", "all")
    assert data["totals"]["counts"] == {"accepted": 16, "processing": 12, "sent": 15, "delivered": 11,
                                        "read": 0, "failed": 2}
    assert [c["channel"] for c in data["channels"]] == ["email", "sms", "whatsapp"]
    sms = data["channels"][1]
    assert sms["counts"]["accepted"] == 12 and sms["events"] == {
        "sms_delivered": 8, "sms_failed": 1, "sms_sent": 11}
    assert [d["date"] for d in sms["days"]] == [f"2026-11-{n}" for n in range(15, 22)]
    by_day = {d["date"]: d for d in sms["days"]}
    assert by_day["2026-11-20"]["counts"]["delivered"] == 8
    assert by_day["2026-11-19"]["counts"] == dict.fromkeys(
        ("accepted", "processing", "sent", "delivered", "read", "failed"), 0)
    assert by_day["2026-11-19"]["latency"]["acceptToSent"] == {
        "samples": 0, "p50": None, "p90": None, "p99": None}
    sent = sms["latency"]["acceptToSent"]
    # a percentile is placed inside the bucket (±12 %) that holds it
    assert sent["samples"] == 11
    assert bucket_of(sent["p50"]) == bucket_of(sent["p99"]) == bucket_of(100)
    delivered = sms["latency"]["acceptToDelivered"]
    assert delivered["samples"] == 8
    assert bucket_of(delivered["p50"]) == bucket_of(1000)  # 7 of 8 took 1 s, one took a minute
    assert bucket_of(delivered["p90"]) == bucket_of(delivered["p99"]) == bucket_of(60000)
    whatsapp = data["channels"][2]
    assert whatsapp["counts"]["accepted"] == 0 and len(whatsapp["days"]) == 7


async def test_filters_by_channel_mode_and_dates(
        stats_client: Client, db: AsyncDatabase[Document], keys: dict[str, str]) -> None:
    await seed(db, keys)
    response = await stats_client.get("/v1/stats", headers=bearer(keys["stats"]), params={
        "channel": "sms", "mode": "live", "dateFrom": "2026-10-31", "dateTo": "2026-11-20"})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert [c["channel"] for c in data["channels"]] == ["sms"]
    assert data["mode"] == "live" and len(data["channels"][0]["days"]) == 21
    assert data["totals"]["counts"]["accepted"] == 109  # Nov 1 (99) and Nov 20 (10); the test-mode day not
    one_day = await stats_client.get("/v1/stats", headers=bearer(keys["stats"]), params={
        "dateFrom": "2026-11-21T00:00:00Z", "dateTo": "2026-11-21", "mode": "test"})
    assert one_day.json()["data"]["totals"]["counts"]["sent"] == 2


async def test_email_stats_add_opens_clicks_bounces_and_complaints(
        stats_client: Client, db: AsyncDatabase[Document], keys: dict[str, str]) -> None:
    await seed(db, keys)
    response = await stats_client.get("/v1/emails/stats", headers=bearer(keys["stats"]))
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["counts"]["delivered"] == 3 and data["counts"]["accepted"] == 4
    assert data["engagement"] == {"opens": 5, "clicks": 2, "softBounces": 2, "hardBounces": 1,
                                  "bounces": 3, "complaints": 1}
    assert data["latency"]["acceptToDelivered"]["samples"] == 3
    assert data["latency"]["acceptToSent"]["p50"] is None
    today = data["days"][-1]
    assert today["date"] == "2026-11-21" and today["engagement"]["opens"] == 5


async def test_each_tenant_sees_only_its_own_stats(
        stats_client: Client, db: AsyncDatabase[Document], keys: dict[str, str]) -> None:
    await seed(db, keys)
    response = await stats_client.get("/v1/stats", headers=bearer(keys["other"]))
    assert response.status_code == 200, response.text
    assert response.json()["data"]["totals"]["counts"]["accepted"] == 1000
    emails = await stats_client.get("/v1/emails/stats", headers=bearer(keys["other"]))
    assert emails.json()["data"]["counts"]["accepted"] == 0


async def test_stats_need_the_stats_read_scope(stats_client: Client, keys: dict[str, str]) -> None:
    for path in ("/v1/stats", "/v1/emails/stats"):
        response = await stats_client.get(path, headers=bearer(keys["reader"]))
        assert response.status_code == 403, path
        assert response.json() == {"success": False, "error": "forbidden", "code": 403,
                                   "message": "this API key lacks the 'stats:read' scope"}
        assert (await stats_client.get(path)).status_code == 401


@pytest.mark.parametrize(("params", "field"), [
    ({"dateFrom": "yesterday"}, "dateFrom"),
    ({"dateTo": "2026-13-01"}, "dateTo"),
    ({"dateFrom": "2026-11-21", "dateTo": "2026-11-20"}, "dateFrom"),
    ({"dateFrom": "2026-08-01", "dateTo": "2026-11-21"}, "dateFrom"),  # 113 days
    ({"dateFrom": "2026-01-01"}, "dateFrom"),  # up to today: too long
    ({"channel": "fax"}, "channel"),
    ({"mode": "sandbox"}, "mode"),
])
async def test_bad_parameters_are_422_naming_them(
        stats_client: Client, keys: dict[str, str], params: dict[str, str], field: str) -> None:
    response = await stats_client.get("/v1/stats", headers=bearer(keys["stats"]), params=params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert (body["success"], body["error"], body["field"]) == (False, "validation_error", field)


async def test_92_days_is_the_longest_range(stats_client: Client, keys: dict[str, str]) -> None:
    response = await stats_client.get("/v1/stats", headers=bearer(keys["stats"]), params={
        "dateFrom": "2026-08-22", "dateTo": "2026-11-21", "channel": "email"})
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]["channels"][0]["days"]) == 92


async def test_stats_do_not_shadow_reading_an_email(client: Client, tenant: Tenant) -> None:
    # /v1/emails/{id} still answers for ids; /v1/emails/stats is the stats route
    response = await client.get("/v1/emails/01JD0000000000000000000000", headers=tenant.auth())
    assert response.status_code in (403, 404)
    stats = await client.get("/v1/emails/stats", headers=tenant.auth())
    assert stats.status_code == 403 and "stats:read" in stats.json()["message"]
