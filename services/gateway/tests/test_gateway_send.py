"""``POST /v1/sms/send`` against real RabbitMQ and SecantusDB: what is stored, what is published."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient, TestClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts import topology
from postwire_platform import tenancy
from postwire_platform.mongo import Document

from .gateway_support import SENDER, VALID_TO, SendQueue, Tenant, eventually

Client = AsyncTestClient[Any]


def payload(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"to": "+1 415-555-2671", "body": "Your code is 123456",
                            "senderId": SENDER}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


async def test_a_valid_send_is_stored_queued_and_published_once(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document], send_queue: SendQueue) -> None:
    response = await client.post("/v1/sms/send", headers=tenant.auth(), json=payload(
        flow="OTP", metadata={"order": "42"}, externalId="ord-42"))

    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert response.json()["success"] is True
    assert data["to"] == VALID_TO  # normalised to E.164
    assert {k: data[k] for k in ("status", "senderId", "flow", "channel", "live", "metadata",
                                 "externalId")} == {
        "status": "QUEUED", "senderId": SENDER, "flow": "OTP", "channel": "sms", "live": True,
        "metadata": {"order": "42"}, "externalId": "ord-42"}
    accepted_at = datetime.fromisoformat(data["acceptedAt"])
    assert abs((datetime.now(UTC) - accepted_at).total_seconds()) < 10

    doc = await db["messages"].find_one({"_id": data["id"]})
    assert doc is not None
    assert (doc["tenant_id"], doc["status"], doc["to"], doc["body"], doc["live"]) == (
        tenant.id, "QUEUED", VALID_TO, "Your code is 123456", True)
    assert doc["timeline"] == [{
        "event_id": f"{data['id']}:queued", "status": "QUEUED", "occurred_at": doc["accepted_at"],
        "recorded_at": doc["accepted_at"], "source": "gateway", "provider_message_id": None,
        "provider_status": None, "error_code": None, "error_reason": None, "detail": {},
        "raw": None}]

    published = await send_queue.take(1)
    assert len(published) == 1
    command, message = published[0]
    assert message.message_id == data["id"] and message.routing_key == topology.SEND_SMS_OTP
    assert (command.message_id, command.tenant_id, command.live, command.to, command.body,
            command.sender_id, command.flow, command.metadata, command.external_id) == (
        data["id"], tenant.id, True, VALID_TO, "Your code is 123456", SENDER, "OTP",
        {"order": "42"}, "ord-42")
    assert command.accepted_at == doc["accepted_at"]

    async def is_published() -> bool:
        stored = await db["messages"].find_one({"_id": data["id"]})
        return bool(stored and stored["published"])

    await eventually(is_published)


async def test_a_test_key_send_is_marked_for_the_sandbox(
        client: Client, tenant: Tenant, send_queue: SendQueue) -> None:
    response = await client.post("/v1/sms/send", headers=tenant.auth(tenant.test_key),
                                 json=payload(to="+15005550003"))
    assert response.status_code == 201, response.text
    assert response.json()["data"]["live"] is False
    [(command, _)] = await send_queue.take(1)
    assert command.live is False and command.to == "+15005550003"


def _error(response: Any, status: int, error: str, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["error"] == error and body["code"] == status
    assert isinstance(body["message"], str) and body["message"]
    assert body.get("field") == field


@pytest.mark.parametrize(("content", "status", "error", "field"), [
    (b'{"to": "+14155552671", "body": ', 400, "invalid_json", None),
    (b"", 400, "invalid_json", None),
    (b'["not", "an", "object"]', 400, "invalid_json", None),
    (b'{"body": "hi", "senderId": "Postwire"}', 422, "validation_error", "to"),
    (b'{"to": 14155552671, "body": "hi", "senderId": "Postwire"}', 422, "validation_error", "to"),
    (b'{"to": "+14155552671", "body": "", "senderId": "Postwire"}', 422, "validation_error",
     "body"),
    (b'{"to": "+14155552671", "body": "hi"}', 422, "validation_error", "senderId"),
    (b'{"to": "+14155552671", "body": "hi", "senderId": "Postwire", "flow": "BULK"}', 422,
     "validation_error", "flow"),
    (b'{"to": "+14155552671", "body": "hi", "senderId": "Postwire", "metadata": {"a": 1}}', 422,
     "validation_error", "metadata"),
    (b'{"to": "+14155552671", "body": "hi", "senderId": "Postwire", "externalId": 7}', 422,
     "validation_error", "externalId"),
    (b'{"to": "+1415555", "body": "hi", "senderId": "Postwire"}', 422, "invalid_phone_number",
     "to"),
    (b'{"to": "04155552671", "body": "hi", "senderId": "Postwire"}', 422, "invalid_phone_number",
     "to"),
    (b'{"to": "+14155552671", "body": "hi", "senderId": "Unknown"}', 422,
     "sender_id_not_approved", "senderId"),
], ids=["truncated", "empty", "array", "missing-to", "to-int", "empty-body", "missing-sender",
        "bad-flow", "metadata-int", "externalId-int", "short-number", "no-country-code",
        "unapproved-sender"])
async def test_bad_input_is_refused_and_changes_nothing(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document], send_queue: SendQueue,
        content: bytes, status: int, error: str, field: str | None) -> None:
    response = await client.post("/v1/sms/send", headers={
        **tenant.auth(), "Content-Type": "application/json"}, content=content)
    _error(response, status, error, field)
    assert await db["messages"].count_documents({}) == 0
    assert await send_queue.empty(settle=0.1)


async def test_limits_on_body_and_metadata(client: Client, tenant: Tenant) -> None:
    too_long = await client.post("/v1/sms/send", headers=tenant.auth(),
                                 json=payload(body="x" * 1601))
    _error(too_long, 422, "validation_error", "body")
    too_many = await client.post("/v1/sms/send", headers=tenant.auth(),
                                 json=payload(metadata={f"k{i}": "v" for i in range(21)}))
    _error(too_many, 422, "validation_error", "metadata")
    longest = await client.post("/v1/sms/send", headers=tenant.auth(), json=payload(
        body="x" * 1530, metadata={f"k{i}": "v" for i in range(20)}))   # 10 segments of 153
    assert longest.status_code == 201, longest.text
    assert (longest.json()["data"]["segments"], longest.json()["data"]["encoding"]) == (10, "GSM-7")
    eleven = await client.post("/v1/sms/send", headers=tenant.auth(), json=payload(body="x" * 1531))
    _error(eleven, 422, "too_many_segments", "body")
    unicode = await client.post("/v1/sms/send", headers=tenant.auth(), json=payload(body="ж" * 671))
    _error(unicode, 422, "too_many_segments", "body")   # 11 segments of 67 UTF-16 units


async def test_segments_encoding_and_the_otp_lane(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document], send_queue: SendQueue) -> None:
    standard = await client.post("/v1/sms/send", headers=tenant.auth(), json=payload(
        body="Prices in € [EUR]: " + "x" * 150))
    assert standard.status_code == 201, standard.text
    data = standard.json()["data"]
    assert (data["segments"], data["encoding"], data["expiresAt"]) == (2, "GSM-7", None)
    otp = await client.post("/v1/sms/send", headers=tenant.auth(), json=payload(
        body="Код: 123456 😀", flow="OTP"))
    otp_data = otp.json()["data"]
    assert (otp_data["segments"], otp_data["encoding"]) == (1, "UCS-2")
    accepted = datetime.fromisoformat(otp_data["acceptedAt"])
    assert datetime.fromisoformat(otp_data["expiresAt"]) - accepted == timedelta(minutes=5)
    custom = await client.post("/v1/sms/send", headers=tenant.auth(), json=payload(
        flow="OTP", expiresAt="2099-01-01T00:00:00Z"))
    assert custom.json()["data"]["expiresAt"].startswith("2099-01-01T00:00:00")
    past = await client.post("/v1/sms/send", headers=tenant.auth(), json=payload(
        flow="OTP", expiresAt="2001-01-01T00:00:00Z"))
    _error(past, 422, "invalid_expires_at", "expiresAt")

    doc = await db["messages"].find_one({"_id": otp_data["id"]})
    assert doc is not None and (doc["segments"], doc["encoding"]) == (1, "UCS-2")
    published = {c.message_id: (c, m) for c, m in await send_queue.take(3)}
    command, message = published[otp_data["id"]]
    assert message.routing_key == topology.SEND_SMS_OTP and command.expires_at == doc["expires_at"]
    assert published[data["id"]][1].routing_key == topology.SEND_SMS
    assert published[data["id"]][0].expires_at is None


async def test_auth_failures_change_nothing(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document], send_queue: SendQueue) -> None:
    no_key = await client.post("/v1/sms/send", json=payload())
    _error(no_key, 401, "unauthorized")
    unknown = await client.post("/v1/sms/send", headers=tenant.auth("pw_live_nope"),
                                json=payload())
    _error(unknown, 401, "unauthorized")
    basic = await client.post("/v1/sms/send", headers={"Authorization": "Basic abc"},
                              json=payload())
    _error(basic, 401, "unauthorized")
    no_scope = await client.post("/v1/sms/send", headers=tenant.auth(tenant.read_only_key),
                                 json=payload())
    _error(no_scope, 403, "forbidden")
    assert "send:sms" in no_scope.json()["message"]
    # auth comes before parsing: a bad body with a bad key is still 401
    _error(await client.post("/v1/sms/send", content=b"{", headers=tenant.auth("x")), 401,
           "unauthorized")
    assert await db["messages"].count_documents({}) == 0
    assert await send_queue.empty(settle=0.1)


async def test_a_suspended_tenant_gets_402_and_a_revoked_key_401(
        client: Client, db: AsyncDatabase[Document]) -> None:
    tenant = await tenancy.create_tenant(db, "Gone")
    key, _ = await tenancy.create_key(db, tenant["_id"], ["send:sms"])
    await db["tenants"].update_one({"_id": tenant["_id"]}, {"$set": {"status": "suspended"}})
    _error(await client.post("/v1/sms/send", headers={"Authorization": f"Bearer {key}"},
                             json=payload()), 402, "tenant_suspended")
    other = await tenancy.create_tenant(db, "Other")
    revoked, record = await tenancy.create_key(db, other["_id"], ["send:sms"])
    await db["api_keys"].update_one({"_id": record["_id"]},
                                    {"$set": {"revoked_at": datetime.now(UTC)}})
    _error(await client.post("/v1/sms/send", headers={"Authorization": f"Bearer {revoked}"},
                             json=payload()), 401, "unauthorized")
    assert await db["messages"].count_documents({}) == 0


async def test_an_oversized_request_is_413(client: Client, tenant: Tenant,
                                           db: AsyncDatabase[Document]) -> None:
    response = await client.post("/v1/sms/send", headers=tenant.auth(),
                                 json=payload(body="x" * 1_100_000))
    _error(response, 413, "payload_too_large")
    assert await db["messages"].count_documents({}) == 0


async def test_an_otp_is_stored_while_a_bulk_group_insert_is_still_under_way(
        app: Litestar, tenant: Tenant, db: AsyncDatabase[Document]) -> None:
    # the OTP's insert goes beside the bulk group in flight, not after it. Litestar's test client runs
    # the app on a loop of its own and blocks the caller per request, so each request is sent from a
    # thread of its own and the held insert is signalled with threading events.
    held, release = threading.Event(), threading.Event()
    with TestClient(app) as http:
        inserter = app.state.gateway.acceptor._inserter
        real = inserter._insert_many

        async def slow(docs: list[Document]) -> list[BaseException | None]:
            held.set()
            while not release.is_set():
                await asyncio.sleep(0.01)
            return await real(docs)

        inserter._insert_many = slow
        bulk = asyncio.ensure_future(asyncio.to_thread(
            http.post, "/v1/sms/send", headers=tenant.auth(),
            json=payload(body="Your order has shipped")))
        try:
            assert await asyncio.to_thread(held.wait, 10)
            otp = await asyncio.wait_for(asyncio.to_thread(  # old code: stuck behind the bulk
                http.post, "/v1/sms/send", headers=tenant.auth(), json=payload(flow="OTP")), 10)
            assert otp.status_code == 201 and not bulk.done()
            stored = await db["messages"].find_one({"_id": otp.json()["data"]["id"]})
            assert stored is not None and stored["flow"] == "OTP"
        finally:
            release.set()
        done = await asyncio.wait_for(bulk, 10)
        assert done.status_code == 201
