"""Batch sends and idempotency keys, against real RabbitMQ and SecantusDB."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from litestar.testing import AsyncTestClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_platform.clock import utcnow
from postwire_platform.mongo import Document

from .gateway_support import SENDER, VALID_TO, SendQueue, Tenant, make_tenant

Client = AsyncTestClient[Any]


def sms(**overrides: Any) -> dict[str, Any]:
    return {"to": VALID_TO, "body": "hello", "senderId": SENDER, **overrides}


async def test_a_batch_accepts_valid_items_and_refuses_the_others_one_by_one(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document], send_queue: SendQueue) -> None:
    items = [sms(externalId="a"), sms(to="12"), sms(senderId="Nope"), sms(body=""),
             sms(externalId="b", flow="OTP")]
    response = await client.post("/v1/sms/batch", headers=tenant.auth(), json={"messages": items})

    assert response.status_code == 202, response.text
    data = response.json()["data"]
    assert (data["accepted"], data["rejected"]) == (2, 3)
    results = data["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert [r["success"] for r in results] == [True, False, False, False, True]
    assert (results[1]["error"], results[1]["code"], results[1]["field"]) == (
        "invalid_phone_number", 422, "to")
    assert (results[2]["error"], results[2]["field"]) == ("sender_id_not_approved", "senderId")
    assert (results[3]["error"], results[3]["field"]) == ("validation_error", "body")
    ids = {results[0]["data"]["id"], results[4]["data"]["id"]}
    assert results[4]["data"]["flow"] == "OTP"

    stored = {d["_id"] async for d in db["messages"].find({"tenant_id": tenant.id})}
    assert stored == ids
    published = await send_queue.take(2)
    assert {command.message_id for command, _ in published} == ids


async def test_a_batch_that_is_empty_too_large_or_malformed_is_refused_whole(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document], send_queue: SendQueue) -> None:
    empty = await client.post("/v1/sms/batch", headers=tenant.auth(), json={"messages": []})
    assert (empty.status_code, empty.json()["field"]) == (422, "messages")
    huge = await client.post("/v1/sms/batch", headers=tenant.auth(),
                             json={"messages": [sms()] * 1001})
    assert (huge.status_code, huge.json()["error"]) == (422, "validation_error")
    broken = await client.post("/v1/sms/batch", headers={**tenant.auth(), "content-type":
                                                         "application/json"}, content=b"{")
    assert (broken.status_code, broken.json()["error"]) == (400, "invalid_json")
    forbidden = await client.post("/v1/emails/batch", headers=tenant.auth(),
                                  json={"messages": [sms()]})
    assert forbidden.status_code == 403
    assert await db["messages"].count_documents({}) == 0
    assert await send_queue.empty()


async def test_the_same_key_and_body_replays_the_first_answer_and_sends_once(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document], send_queue: SendQueue) -> None:
    headers = {**tenant.auth(), "Idempotency-Key": "order-42"}
    first = await client.post("/v1/sms/send", headers=headers, json=sms())
    again = await client.post("/v1/sms/send", headers=headers, json=sms())
    other_header = await client.post("/v1/sms/send", json=sms(), headers={
        **tenant.auth(), "X-Idempotency-Key": "order-42"})

    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    for replay in (again, other_header):
        assert replay.status_code == 201
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.json() == first.json()
    assert await db["messages"].count_documents({"tenant_id": tenant.id}) == 1
    assert len(await send_queue.take(1)) == 1


async def test_a_different_body_under_the_same_key_is_409_and_changes_nothing(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document], send_queue: SendQueue) -> None:
    headers = {**tenant.auth(), "Idempotency-Key": "k-1"}
    assert (await client.post("/v1/sms/send", headers=headers, json=sms())).status_code == 201
    clash = await client.post("/v1/sms/send", headers=headers, json=sms(body="other"))
    assert (clash.status_code, clash.json()["error"]) == (409, "idempotency_key_reused")
    assert await db["messages"].count_documents({}) == 1


async def test_keys_are_per_tenant_and_failed_requests_keep_no_answer(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document], send_queue: SendQueue) -> None:
    other = await make_tenant(db, "Other")
    key = {"Idempotency-Key": "shared"}
    refused = await client.post("/v1/sms/send", headers={**tenant.auth(), **key}, json=sms(to="1"))
    assert refused.status_code == 422
    # nothing was kept for the refused request: the corrected one goes through under the same key
    mine = await client.post("/v1/sms/send", headers={**tenant.auth(), **key}, json=sms())
    theirs = await client.post("/v1/sms/send", headers={**other.auth(), **key}, json=sms())
    assert mine.status_code == theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers
    assert mine.json()["data"]["id"] != theirs.json()["data"]["id"]
    empty = await client.post("/v1/sms/send", headers={**tenant.auth(), "Idempotency-Key": " "},
                              json=sms())
    assert (empty.status_code, empty.json()["field"]) == (422, "Idempotency-Key")


async def test_a_request_still_in_flight_is_409_and_an_abandoned_one_is_taken_over(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document], send_queue: SendQueue) -> None:
    body = b'{"to": "+14155552671", "body": "hello", "senderId": "Postwire"}'
    fingerprint = hashlib.sha256(b"\n".join([b"POST", b"/v1/sms/send", body])).hexdigest()
    now = utcnow()
    for key, claimed in (("busy", now), ("abandoned", now - timedelta(minutes=5))):
        await db["idempotency_keys"].insert_one({
            "_id": f"{tenant.id}:{key}", "tenant_id": tenant.id, "fingerprint": fingerprint,
            "state": "in_flight", "created_at": claimed, "claimed_at": claimed,
            "expires_at": now + timedelta(hours=24)})
    headers = {**tenant.auth(), "content-type": "application/json"}
    busy = await client.post("/v1/sms/send", headers={**headers, "Idempotency-Key": "busy"},
                             content=body)
    assert (busy.status_code, busy.json()["error"]) == (409, "idempotency_request_in_progress")
    assert busy.headers["retry-after"] == "1"
    taken = await client.post("/v1/sms/send", headers={**headers, "Idempotency-Key": "abandoned"},
                              content=body)
    assert taken.status_code == 201, taken.text
    record = await db["idempotency_keys"].find_one({"_id": f"{tenant.id}:abandoned"})
    assert record is not None and record["state"] == "done"


async def test_a_batch_is_idempotent_as_a_whole(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document], send_queue: SendQueue) -> None:
    headers = {**tenant.auth(), "Idempotency-Key": "batch-1"}
    payload = {"messages": [sms(), sms(to="1")]}
    first = await client.post("/v1/sms/batch", headers=headers, json=payload)
    second = await client.post("/v1/sms/batch", headers=headers, json=payload)
    assert first.status_code == second.status_code == 202
    assert second.json() == first.json() and second.headers["idempotent-replayed"] == "true"
    assert await db["messages"].count_documents({}) == 1
