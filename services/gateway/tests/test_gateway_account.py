"""API keys, sender id requests and review, SMS opt-outs and email suppressions through the API."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_platform import tenancy
from postwire_platform.mongo import Document

from .gateway_support import VALID_TO, Tenant, make_tenant

Client = AsyncTestClient[Any]


async def key_with(db: AsyncDatabase[Document], tenant_id: str, *scopes: str,
                   mode: tenancy.Mode = "live") -> dict[str, str]:
    key, _ = await tenancy.create_key(db, tenant_id, list(scopes), mode=mode)
    return {"Authorization": f"Bearer {key}"}


async def operator_key(db: AsyncDatabase[Document]) -> dict[str, str]:
    operator = await tenancy.create_tenant(db, "Operator")
    return await key_with(db, operator["_id"], *tenancy.SCOPES)


async def test_api_keys_are_shown_once_listed_by_prefix_and_revoked(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document]) -> None:
    admin_of_keys = await key_with(db, tenant.id, "keys:write", "read:sms", "send:sms")
    created = await client.post("/v1/api-keys", headers=admin_of_keys, json={
        "name": "ci", "scopes": ["read:sms"], "mode": "live"})
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    new_key = data["key"]
    assert new_key.startswith("pw_live_") and data["prefix"] == new_key[:12]
    assert data["scopes"] == ["read:sms"] and data["rateLimit"] is None
    stored = await db["api_keys"].find_one({"_id": data["id"]})
    assert stored is not None and new_key not in str(stored)  # only the hash is kept

    listed = await client.get("/v1/api-keys", headers=admin_of_keys)
    assert listed.status_code == 200
    entries = {k["id"]: k for k in listed.json()["data"]}
    assert data["id"] in entries and "key" not in entries[data["id"]]
    assert all("hash" not in k for k in entries.values())
    assert listed.json()["pagination"]["total"] == len(entries)

    new_auth = {"Authorization": f"Bearer {new_key}"}
    assert (await client.get("/v1/sms", headers=new_auth)).status_code == 200
    assert (await client.post("/v1/sms/send", headers=new_auth, json={})).status_code == 403
    revoked = await client.delete(f"/v1/api-keys/{data['id']}", headers=admin_of_keys)
    assert revoked.status_code == 204
    assert (await client.get("/v1/sms", headers=new_auth)).status_code == 401
    assert (await client.delete(f"/v1/api-keys/{data['id']}", headers=admin_of_keys)).status_code == 204


async def test_a_key_cannot_grant_more_than_it_holds_nor_touch_another_tenants_keys(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document]) -> None:
    writer = await key_with(db, tenant.id, "keys:write", "read:sms")
    for body, status, field in (({"scopes": ["admin"]}, 403, None),
                                ({"scopes": ["send:email"]}, 403, None),
                                ({"scopes": ["fly"]}, 422, "scopes"),
                                ({"scopes": []}, 422, "scopes"),
                                ({"scopes": ["read:sms"], "rateLimit": {"perMinute": 10,
                                                                        "perSecond": 1}}, 403, None)):
        response = await client.post("/v1/api-keys", headers=writer, json=body)
        assert response.status_code == status, (body, response.text)
        assert response.json().get("field") == field
    test_writer = await key_with(db, tenant.id, "keys:write", "read:sms", mode="test")
    assert (await client.post("/v1/api-keys", headers=test_writer, json={
        "scopes": ["read:sms"], "mode": "live"})).status_code == 403
    other = await make_tenant(db, "Other")
    theirs = await tenancy.create_key(db, other.id, ["read:sms"])
    assert (await client.delete(f"/v1/api-keys/{theirs[1]['_id']}", headers=writer)).status_code == 404
    assert (await client.get("/v1/api-keys", headers=tenant.auth())).status_code == 403


async def test_sender_ids_are_requested_reviewed_by_an_admin_and_then_usable(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document]) -> None:
    admin = await operator_key(db)
    bad = await client.post("/v1/sms/sender-id-requests", headers=tenant.auth(),
                            json={"senderId": "Far too long a name"})
    assert (bad.status_code, bad.json()["field"]) == (422, "senderId")
    asked = await client.post("/v1/sms/sender-id-requests", headers=tenant.auth(), json={
        "senderId": "Acme", "purpose": "receipts", "countries": ["gb", "NG"]})
    assert asked.status_code == 201, asked.text
    request = asked.json()["data"]
    assert (request["status"], request["countries"]) == ("pending", ["GB", "NG"])
    again = await client.post("/v1/sms/sender-id-requests", headers=tenant.auth(),
                              json={"senderId": "Acme"})
    assert (again.status_code, again.json()["error"]) == (409, "sender_id_exists")

    send = {"to": VALID_TO, "body": "hi", "senderId": "Acme"}
    assert (await client.post("/v1/sms/send", headers=tenant.auth(), json=send)).status_code == 422
    review_path = f"/v1/sms/sender-id-requests/{request['id']}/review"
    assert (await client.post(review_path, headers=tenant.auth(),
                              json={"decision": "approve"})).status_code == 403
    no_reason = await client.post(review_path, headers=admin, json={"decision": "reject"})
    assert (no_reason.status_code, no_reason.json()["field"]) == (422, "reason")
    pending = await client.get("/v1/sms/sender-id-requests", headers=admin,
                               params={"status": "pending"})
    assert request["id"] in [r["id"] for r in pending.json()["data"]]
    approved = await client.post(review_path, headers=admin, json={"decision": "approve"})
    assert approved.status_code == 200 and approved.json()["data"]["status"] == "approved"
    twice = await client.post(review_path, headers=admin, json={"decision": "reject", "reason": "x"})
    assert (twice.status_code, twice.json()["error"]) == (409, "already_reviewed")
    unknown = await client.post("/v1/sms/sender-id-requests/sid_nope/review", headers=admin,
                                json={"decision": "approve"})
    assert unknown.status_code == 404

    senders = await client.get("/v1/sms/sender-ids", headers=tenant.auth())
    assert sorted(s["senderId"] for s in senders.json()["data"]) == ["Acme", "Postwire"]
    assert (await client.post("/v1/sms/send", headers=tenant.auth(), json=send)).status_code == 201
    other = await make_tenant(db, "Other")
    mine_only = await client.get("/v1/sms/sender-id-requests", headers=other.auth())
    assert all(r["tenantId"] == other.id for r in mine_only.json()["data"])


async def test_a_rejected_sender_id_says_why_and_may_be_requested_again(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document]) -> None:
    admin = await operator_key(db)
    asked = (await client.post("/v1/sms/sender-id-requests", headers=tenant.auth(),
                               json={"senderId": "BANK"})).json()["data"]
    rejected = await client.post(f"/v1/sms/sender-id-requests/{asked['id']}/review", headers=admin,
                                 json={"decision": "reject", "reason": "impersonates a bank"})
    assert rejected.json()["data"]["reason"] == "impersonates a bank"
    retry = await client.post("/v1/sms/sender-id-requests", headers=tenant.auth(),
                              json={"senderId": "BANK", "purpose": "we are the bank"})
    assert retry.status_code == 201 and retry.json()["data"]["status"] == "pending"


async def test_opt_outs_are_added_listed_and_removed_per_tenant(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document]) -> None:
    added = await client.post("/v1/sms/opt-outs", headers=tenant.auth(),
                              json={"phone": "+1 (415) 555-2671"})
    assert added.status_code == 201 and added.json()["data"]["phone"] == VALID_TO
    duplicate = await client.post("/v1/sms/opt-outs", headers=tenant.auth(), json={"phone": VALID_TO})
    assert duplicate.status_code == 409
    invalid = await client.post("/v1/sms/opt-outs", headers=tenant.auth(), json={"phone": "12"})
    assert (invalid.status_code, invalid.json()["field"]) == (422, "phone")
    listed = await client.get("/v1/sms/opt-outs", headers=tenant.auth())
    assert [o["phone"] for o in listed.json()["data"]] == [VALID_TO]
    other = await make_tenant(db, "Other")
    assert (await client.get("/v1/sms/opt-outs", headers=other.auth())).json()["data"] == []
    assert (await client.delete("/v1/sms/opt-outs", headers=other.auth(),
                                params={"phone": VALID_TO})).status_code == 404
    assert (await client.delete("/v1/sms/opt-outs", headers=tenant.auth())).status_code == 422
    removed = await client.delete("/v1/sms/opt-outs", headers=tenant.auth(), params={"phone": VALID_TO})
    assert removed.status_code == 204
    assert await db["opt_outs"].count_documents({}) == 0


async def test_suppressions_are_added_listed_and_removed(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document]) -> None:
    email_key = await key_with(db, tenant.id, "send:email", "read:email")
    added = await client.post("/v1/suppressions", headers=email_key,
                              json={"email": "Bob@Example.com", "reason": "unsubscribe"})
    assert added.status_code == 201, added.text
    assert added.json()["data"]["email"] == "bob@example.com"
    assert (await client.post("/v1/suppressions", headers=email_key,
                              json={"email": "bob@example.com"})).status_code == 409
    bad = await client.post("/v1/suppressions", headers=email_key,
                            json={"email": "x@y.z", "reason": "hard_bounce"})
    assert (bad.status_code, bad.json()["field"]) == (422, "reason")  # bounces are the system's to add
    await db["suppressions"].insert_one({"_id": "s2", "tenant_id": tenant.id, "email": "c@example.com",
                                         "reason": "hard_bounce", "source": "smtp",
                                         "message_id": "m1"})
    bounced = await client.get("/v1/suppressions", headers=email_key, params={"reason": "hard_bounce"})
    assert [s["email"] for s in bounced.json()["data"]] == ["c@example.com"]
    assert (await client.get("/v1/suppressions", headers=tenant.auth())).status_code == 403
    removed = await client.delete("/v1/suppressions", headers=email_key,
                                  params={"email": "BOB@example.com"})
    assert removed.status_code == 204
    assert (await client.delete("/v1/suppressions", headers=email_key,
                                params={"email": "bob@example.com"})).status_code == 404
