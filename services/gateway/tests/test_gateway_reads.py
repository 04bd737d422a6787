"""SMS reads: one message, its timeline in event order, the paged and filtered list, tenant isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.testing import AsyncTestClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_platform.mongo import Document

from .gateway_support import SENDER, VALID_TO, Tenant, make_tenant

Client = AsyncTestClient[Any]
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


async def send(client: Client, tenant: Tenant, **extra: Any) -> dict[str, Any]:
    response = await client.post("/v1/sms/send", headers=tenant.auth(), json={
        "to": VALID_TO, "body": "hello", "senderId": SENDER, **extra})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def entry(base: datetime, status: str, seconds: float, source: str, **extra: Any) -> Document:
    return {"event_id": f"e-{status}-{seconds}", "status": status,
            "occurred_at": base + timedelta(seconds=seconds),
            "recorded_at": base + timedelta(seconds=10), "source": source, **extra}


async def test_get_returns_the_message_and_404_for_another_tenant(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document]) -> None:
    sent = await send(client, tenant, metadata={"a": "b"}, externalId="x-1", flow="OTP")
    response = await client.get(f"/v1/sms/{sent['id']}", headers=tenant.auth())
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert response.json()["success"] is True
    assert data == {
        "id": sent["id"], "status": "QUEUED", "to": VALID_TO, "senderId": SENDER, "body": "hello",
        "flow": "OTP", "metadata": {"a": "b"}, "externalId": "x-1", "live": True,
        "providerMessageId": None, "errorCode": None, "errorReason": None,
        "acceptedAt": sent["acceptedAt"], "sentAt": None, "deliveredAt": None, "failedAt": None,
        "updatedAt": sent["acceptedAt"], "channel": "sms", "readAt": None, "segments": 1,
        "encoding": "GSM-7", "expiresAt": sent["expiresAt"]}
    assert sent["expiresAt"] is not None  # an OTP expires

    other = await make_tenant(db, "Other")
    for path in (f"/v1/sms/{sent['id']}", f"/v1/sms/{sent['id']}/timeline", "/v1/sms/nope"):
        response = await client.get(path, headers=other.auth())
        assert response.status_code == 404, path
        assert response.json()["error"] == "not_found"
    listed = await client.get("/v1/sms", headers=other.auth())
    assert listed.json()["data"] == []


async def test_reads_need_read_sms(client: Client, tenant: Tenant) -> None:
    response = await client.get("/v1/sms", headers=tenant.auth(tenant.webhooks_key))
    assert response.status_code == 403 and "read:sms" in response.json()["message"]
    assert (await client.get("/v1/sms/x")).status_code == 401


async def test_timeline_is_sorted_by_occurrence_with_ties_in_status_order(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document]) -> None:
    sent = await send(client, tenant)
    base = datetime(2099, 1, 1, tzinfo=UTC)  # after the acceptance, whatever today is
    late = [
        entry(base, "DELIVERED", 3, "carrier-dlr", provider_message_id="c-1", provider_status="DELIVRD",
              raw="id:c-1 stat:DELIVRD", detail={"err": "000"}),
        entry(base, "SENT", 2, "sms-dispatcher", provider_message_id="c-1"),
        entry(base, "PROCESSING", 2, "sms-dispatcher"),
        entry(base, "SENT", 2, "carrier-dlr", provider_status="ENROUTE"),
    ]
    await db["messages"].update_one({"_id": sent["id"]},
                                    {"$push": {"timeline": {"$each": late}}})
    response = await client.get(f"/v1/sms/{sent['id']}/timeline", headers=tenant.auth())
    assert response.status_code == 200, response.text
    timeline = response.json()["data"]
    assert [(e["status"], e["source"]) for e in timeline] == [
        ("QUEUED", "gateway"), ("PROCESSING", "sms-dispatcher"), ("SENT", "sms-dispatcher"),
        ("SENT", "carrier-dlr"), ("DELIVERED", "carrier-dlr")]
    assert timeline[-1] == {
        "status": "DELIVERED", "eventType": None, "occurredAt": "2099-01-01T00:00:03.000Z",
        "recordedAt": "2099-01-01T00:00:10.000Z", "source": "carrier-dlr",
        "providerMessageId": "c-1", "providerStatus": "DELIVRD", "errorCode": None,
        "errorReason": None, "detail": {"err": "000"}, "raw": "id:c-1 stat:DELIVRD"}
    assert timeline[0]["occurredAt"] == sent["acceptedAt"]


async def test_list_pages_newest_first_and_filters(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document]) -> None:
    ids = [(await send(client, tenant, flow="OTP" if i % 2 else "STANDARD"))["id"]
           for i in range(5)]
    # distinct acceptance times, so "newest first" is unambiguous
    for i, mid in enumerate(ids):
        await db["messages"].update_one({"_id": mid},
                                        {"$set": {"accepted_at": T0 + timedelta(seconds=i)}})
    await db["messages"].update_one({"_id": ids[0]}, {"$set": {"status": "DELIVERED"}})

    first = await client.get("/v1/sms", params={"pageSize": 2}, headers=tenant.auth())
    assert first.status_code == 200, first.text
    assert [m["id"] for m in first.json()["data"]] == [ids[4], ids[3]]
    assert first.json()["pagination"] == {"page": 1, "pageSize": 2, "total": 5, "totalPages": 3,
                                          "hasNext": True}
    last = await client.get("/v1/sms", params={"pageSize": 2, "page": 3}, headers=tenant.auth())
    assert [m["id"] for m in last.json()["data"]] == [ids[0]]
    assert last.json()["pagination"]["hasNext"] is False

    otp = await client.get("/v1/sms", params={"flow": "OTP"}, headers=tenant.auth())
    assert [m["id"] for m in otp.json()["data"]] == [ids[3], ids[1]]
    delivered = await client.get("/v1/sms", params={"status": "DELIVERED"}, headers=tenant.auth())
    assert [m["id"] for m in delivered.json()["data"]] == [ids[0]]
    assert delivered.json()["data"][0]["status"] == "DELIVERED"


async def test_list_parameters_are_validated(client: Client, tenant: Tenant) -> None:
    for params, field in [({"pageSize": 101}, "pageSize"), ({"pageSize": 0}, "pageSize"),
                          ({"page": 0}, "page"), ({"page": "two"}, "page"),
                          ({"status": "LOST"}, "status"), ({"flow": "BULK"}, "flow")]:
        response = await client.get("/v1/sms", params=params, headers=tenant.auth())
        assert response.status_code == 422, params
        body = response.json()
        assert (body["error"], body["field"], body["code"]) == ("validation_error", field, 422)
    ok = await client.get("/v1/sms", params={"pageSize": 100}, headers=tenant.auth())
    assert ok.status_code == 200 and ok.json()["pagination"]["pageSize"] == 100
