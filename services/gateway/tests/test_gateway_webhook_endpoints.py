"""Customer webhook endpoints: create (secret once), list without secrets, delete, isolation."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_platform.mongo import Document

from .gateway_support import Tenant, make_tenant

Client = AsyncTestClient[Any]
PATH = "/v1/webhook-endpoints"


async def test_create_list_delete(client: Client, tenant: Tenant,
                                  db: AsyncDatabase[Document]) -> None:
    auth = tenant.auth(tenant.webhooks_key)
    created = await client.post(PATH, headers=auth, json={
        "url": "https://hooks.example.com/postwire", "events": ["sms_delivered", "sms_failed"],
        "description": "prod"})
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    assert data["secret"].startswith("whsec_")
    assert {k: data[k] for k in ("url", "events", "description", "enabled")} == {
        "url": "https://hooks.example.com/postwire", "events": ["sms_delivered", "sms_failed"],
        "description": "prod", "enabled": True}
    stored = await db["webhook_endpoints"].find_one({"_id": data["id"]})
    assert stored is not None and stored["tenant_id"] == tenant.id
    assert stored["secret"] == data["secret"]

    default = await client.post(PATH, headers=auth, json={"url": "http://10.0.0.1:9000/h",
                                                         "enabled": False})
    assert default.status_code == 201, default.text
    assert default.json()["data"]["events"] == ["*"]
    assert default.json()["data"]["enabled"] is False

    listed = await client.get(PATH, headers=auth)
    assert listed.status_code == 200
    items = listed.json()["data"]
    assert {i["id"] for i in items} == {data["id"], default.json()["data"]["id"]}
    assert all("secret" not in i for i in items)
    assert listed.json()["pagination"]["total"] == 2

    other = await make_tenant(db, "Other")
    other_auth = other.auth(other.webhooks_key)
    assert (await client.get(PATH, headers=other_auth)).json()["data"] == []
    refused = await client.delete(f"{PATH}/{data['id']}", headers=other_auth)
    assert refused.status_code == 404 and refused.json()["error"] == "not_found"

    deleted = await client.delete(f"{PATH}/{data['id']}", headers=auth)
    assert deleted.status_code == 204 and deleted.content == b""
    assert (await client.delete(f"{PATH}/{data['id']}", headers=auth)).status_code == 404
    assert await db["webhook_endpoints"].count_documents({}) == 1


async def test_bad_endpoints_are_refused(client: Client, tenant: Tenant,
                                         db: AsyncDatabase[Document]) -> None:
    auth = tenant.auth(tenant.webhooks_key)
    for body, field in [({"url": "ftp://example.com/x"}, "url"), ({"url": "example.com"}, "url"),
                        ({"url": "https://"}, "url"), ({}, "url"), ({"url": 5}, "url"),
                        ({"url": "https://e.com", "events": ["sms_exploded"]}, "events"),
                        ({"url": "https://e.com", "events": []}, "events"),
                        ({"url": "https://e.com", "enabled": "yes"}, "enabled")]:
        response = await client.post(PATH, headers=auth, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["field"] == field, body
    forbidden = await client.post(PATH, headers=tenant.auth(), json={"url": "https://e.com"})
    assert forbidden.status_code == 403 and "webhooks:write" in forbidden.json()["message"]
    assert await db["webhook_endpoints"].count_documents({}) == 0
