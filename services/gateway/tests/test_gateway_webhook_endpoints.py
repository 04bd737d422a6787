"""Customer webhook endpoints: CRUD, secrets (once, sealed, rotated), the SSRF guard, isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_gateway.app import create_app
from postwire_gateway.settings import GatewaySettings
from postwire_platform.mongo import Document
from postwire_platform.secrets_at_rest import Keyring, is_encrypted
from postwire_platform.webhook_store import signing_secrets

from .gateway_support import Tenant, make_tenant
from .webhook_support import PATH, PUBLIC, hooks_key

Client = AsyncTestClient[Any]


def keyring(client: Client) -> Keyring:
    ring: Keyring = client.app.state.gateway.keyring
    return ring


async def test_create_get_update_list_delete(client: Client, tenant: Tenant,
                                             db: AsyncDatabase[Document]) -> None:
    auth = await hooks_key(db, tenant.id)
    created = await client.post(PATH, headers=auth, json={
        "url": PUBLIC, "events": ["sms_failed", "sms_delivered"], "description": "prod"})
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    assert data["secret"].startswith("whsec_")
    assert {k: data[k] for k in ("url", "events", "description", "enabled", "mode")} == {
        "url": PUBLIC, "events": ["sms_delivered", "sms_failed"], "description": "prod",
        "enabled": True, "mode": "live"}
    stored = await db["webhook_endpoints"].find_one({"_id": data["id"]})
    assert stored is not None and stored["tenant_id"] == tenant.id
    assert is_encrypted(stored["secret"]) and data["secret"] not in str(stored)
    assert signing_secrets(stored, keyring(client))[0].secret == data["secret"]

    got = await client.get(f"{PATH}/{data['id']}", headers=auth)
    assert got.status_code == 200 and "secret" not in got.json()["data"]
    assert got.json()["data"]["events"] == ["sms_delivered", "sms_failed"]

    updated = await client.patch(f"{PATH}/{data['id']}", headers=auth, json={
        "events": ["*"], "enabled": False, "description": "paused"})
    assert updated.status_code == 200, updated.text
    assert {k: updated.json()["data"][k] for k in ("events", "enabled", "description", "url")} == {
        "events": ["*"], "enabled": False, "description": "paused", "url": PUBLIC}

    other_url = await client.post(PATH, headers=auth, json={"url": "https://93.184.215.15/h",
                                                            "enabled": False})
    assert other_url.status_code == 201, other_url.text
    listed = await client.get(PATH, headers=auth)
    assert listed.status_code == 200
    items = listed.json()["data"]
    assert {i["id"] for i in items} == {data["id"], other_url.json()["data"]["id"]}
    assert all("secret" not in i for i in items)
    assert listed.json()["pagination"]["total"] == 2

    other = await make_tenant(db, "Other")
    other_auth = await hooks_key(db, other.id)
    assert (await client.get(PATH, headers=other_auth)).json()["data"] == []
    for call in (client.get(f"{PATH}/{data['id']}", headers=other_auth),
                 client.patch(f"{PATH}/{data['id']}", headers=other_auth, json={"enabled": True}),
                 client.delete(f"{PATH}/{data['id']}", headers=other_auth),
                 client.post(f"{PATH}/{data['id']}/rotate-secret", headers=other_auth)):
        refused = await call
        assert refused.status_code == 404 and refused.json()["error"] == "not_found"

    deleted = await client.delete(f"{PATH}/{data['id']}", headers=auth)
    assert deleted.status_code == 204 and deleted.content == b""
    assert (await client.delete(f"{PATH}/{data['id']}", headers=auth)).status_code == 404
    assert await db["webhook_endpoints"].count_documents({}) == 1


async def test_enabling_again_clears_the_reason_it_was_disabled(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document]) -> None:
    auth = await hooks_key(db, tenant.id)
    created = (await client.post(PATH, headers=auth, json={"url": PUBLIC})).json()["data"]
    # webhook-fanout disables an endpoint that answers 410
    await db["webhook_endpoints"].update_one({"_id": created["id"]}, {"$set": {
        "enabled": False, "disabled_reason": "410 Gone", "disabled_at": datetime.now(UTC)}})
    gone = (await client.get(f"{PATH}/{created['id']}", headers=auth)).json()["data"]
    assert (gone["enabled"], gone["disabledReason"]) == (False, "410 Gone")
    back = await client.patch(f"{PATH}/{created['id']}", headers=auth, json={"enabled": True})
    assert back.status_code == 200 and back.json()["data"]["disabledReason"] is None
    stored = await db["webhook_endpoints"].find_one({"_id": created["id"]})
    assert stored is not None and stored["enabled"] is True and "disabled_reason" not in stored


async def test_bad_endpoints_are_refused(client: Client, tenant: Tenant,
                                         db: AsyncDatabase[Document]) -> None:
    auth = await hooks_key(db, tenant.id)
    for body, field in [({"url": "ftp://example.com/x"}, "url"), ({"url": "example.com"}, "url"),
                        ({"url": "https://"}, "url"), ({}, "url"), ({"url": 5}, "url"),
                        ({"url": PUBLIC, "events": ["sms_exploded"]}, "events"),
                        ({"url": PUBLIC, "events": []}, "events"),
                        ({"url": PUBLIC, "enabled": "yes"}, "enabled"),
                        ({"url": "https://user:pw@93.184.215.14/"}, "url")]:
        response = await client.post(PATH, headers=auth, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["field"] == field, body
    forbidden = await client.post(PATH, headers=tenant.auth(), json={"url": PUBLIC})
    assert forbidden.status_code == 403 and "webhooks:write" in forbidden.json()["message"]
    assert await db["webhook_endpoints"].count_documents({}) == 0


@pytest.mark.parametrize("url", [
    "https://127.0.0.1:9000/hook", "https://localhost/hook", "https://10.0.0.1/h",
    "https://192.168.1.20/h", "https://169.254.169.254/latest/meta-data", "https://[::1]:8443/",
    "https://[fd00::1]/", "https://0.0.0.0/", "https://100.64.0.1/",
])
async def test_private_and_loopback_targets_are_refused(
        url: str, client: Client, tenant: Tenant, db: AsyncDatabase[Document]) -> None:
    auth = await hooks_key(db, tenant.id)
    refused = await client.post(PATH, headers=auth, json={"url": url})
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "url" and "public" in refused.json()["message"]
    created = (await client.post(PATH, headers=auth, json={"url": PUBLIC})).json()["data"]
    moved = await client.patch(f"{PATH}/{created['id']}", headers=auth, json={"url": url})
    assert moved.status_code == 422 and moved.json()["field"] == "url"
    assert (await client.get(f"{PATH}/{created['id']}", headers=auth)).json()["data"]["url"] == PUBLIC


async def test_live_keys_require_https_test_keys_may_use_http(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document]) -> None:
    live = await hooks_key(db, tenant.id, "live")
    test = await hooks_key(db, tenant.id, "test")
    plain = "http://93.184.215.14:8080/hook"
    refused = await client.post(PATH, headers=live, json={"url": plain})
    assert refused.status_code == 422 and "https" in refused.json()["message"]
    created = await client.post(PATH, headers=test, json={"url": plain})
    assert created.status_code == 201 and created.json()["data"]["mode"] == "test"
    live_endpoint = (await client.post(PATH, headers=live, json={"url": PUBLIC})).json()["data"]
    # a test key cannot downgrade a live endpoint to plain http either
    downgrade = await client.patch(f"{PATH}/{live_endpoint['id']}", headers=test,
                                   json={"url": plain})
    assert downgrade.status_code == 422 and downgrade.json()["field"] == "url"


@pytest.fixture
def private_settings(settings: GatewaySettings) -> GatewaySettings:
    return msgspec.structs.replace(settings, webhook_allow_private=True)


async def test_the_operator_can_allow_local_targets(
        private_settings: GatewaySettings, tenant: Tenant, db: AsyncDatabase[Document]) -> None:
    async with AsyncTestClient(create_app(private_settings)) as local:
        test = await hooks_key(db, tenant.id, "test")
        created = await local.post(PATH, headers=test, json={"url": "http://127.0.0.1:9999/hook"})
        assert created.status_code == 201, created.text


async def test_rotation_shows_the_new_secret_once_and_keeps_the_old_one_signing(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document]) -> None:
    auth = await hooks_key(db, tenant.id)
    created = (await client.post(PATH, headers=auth, json={"url": PUBLIC})).json()["data"]
    rotated = await client.post(f"{PATH}/{created['id']}/rotate-secret", headers=auth,
                                json={"overlapSeconds": 3600})
    assert rotated.status_code == 200, rotated.text
    data = rotated.json()["data"]
    assert data["secret"].startswith("whsec_") and data["secret"] != created["secret"]
    expires = datetime.fromisoformat(data["previousSecretExpiresAt"].replace("Z", "+00:00"))
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    stored = await db["webhook_endpoints"].find_one({"_id": created["id"]})
    assert stored is not None
    assert [s.secret for s in signing_secrets(stored, keyring(client))] == [
        data["secret"], created["secret"]]
    assert "secret" not in (await client.get(f"{PATH}/{created['id']}", headers=auth)).json()["data"]

    default = await client.post(f"{PATH}/{created['id']}/rotate-secret", headers=auth)
    assert default.status_code == 200  # no body: the configured overlap (a day)
    too_long = await client.post(f"{PATH}/{created['id']}/rotate-secret", headers=auth,
                                 json={"overlapSeconds": 30 * 86400})
    assert too_long.status_code == 422 and too_long.json()["field"] == "overlapSeconds"


def test_the_gateway_refuses_to_start_without_secret_keys(settings: GatewaySettings) -> None:
    from postwire_platform.settings import SettingsError

    with pytest.raises(SettingsError, match="SECRET_KEYS"):
        create_app(msgspec.structs.replace(settings, secret_keys=[]))
