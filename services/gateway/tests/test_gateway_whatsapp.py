"""WhatsApp in the gateway: the channel switch, template validation, the tenant's own line
(``/v1/account/whatsapp-cloud-line``) and conversation reads."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from postwire_gateway.app import create_app
from postwire_gateway.settings import GatewaySettings
from postwire_platform import tenancy
from postwire_platform.clock import utcnow
from postwire_platform.mongo import CONVERSATIONS, MESSAGES, OPT_OUTS, TENANTS, Document
from postwire_platform.secrets_at_rest import Keyring

from .gateway_support import VALID_TO, Tenant, make_tenant

Client = AsyncTestClient[Any]
LINE = "/v1/account/whatsapp-cloud-line"
PLATFORM_PHONE = "106540352242922"


async def keys(db: AsyncDatabase[Document], tenant_id: str) -> dict[str, dict[str, str]]:
    out = {}
    for name, scopes in (("send", ["send:whatsapp", "read:whatsapp"]), ("read", ["members:read"]),
                         ("admin", ["members:read", "members:write"])):
        key, _ = await tenancy.create_key(db, tenant_id, scopes, mode="live")
        out[name] = {"Authorization": f"Bearer {key}"}
    return out


async def test_sends_are_503_while_the_channel_is_switched_off(
        settings: GatewaySettings, tenant: Tenant, db: AsyncDatabase[Document]) -> None:
    off = msgspec.structs.replace(settings, whatsapp_cloud_api_enabled=False)
    auth = (await keys(db, tenant.id))["send"]
    async with AsyncTestClient(create_app(off)) as client:
        one = await client.post("/v1/whatsapp/send", headers=auth, json={"to": VALID_TO, "text": "hi"})
        batch = await client.post("/v1/whatsapp/batch", headers=auth,
                                  json={"messages": [{"to": VALID_TO, "text": "hi"}]})
    for response in (one, batch):
        assert response.status_code == 503
        assert response.json()["error"] == "whatsapp_disabled"
        assert "WHATSAPP_CLOUD_API_ENABLED" in response.json()["message"]
    assert await db[MESSAGES].count_documents({}) == 0


async def test_template_names_languages_and_parameters_are_validated(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document]) -> None:
    auth = (await keys(db, tenant.id))["send"]
    for template, field in (({"name": "Order Update", "language": "en_US"}, "template"),
                            ({"name": "order_update", "language": "english"}, "template"),
                            ({"name": "order_update", "language": "en", "bodyParameters": [""]},
                             "template")):
        r = await client.post("/v1/whatsapp/send", headers=auth,
                              json={"to": VALID_TO, "template": template})
        assert (r.status_code, r.json()["field"]) == (422, field), r.text
    bad_to = await client.post("/v1/whatsapp/send", headers=auth, json={"to": "12", "text": "x"})
    assert (bad_to.status_code, bad_to.json()["error"]) == (422, "invalid_phone_number")
    ok = await client.post("/v1/whatsapp/send", headers=auth, json={
        "to": VALID_TO, "template": {"name": "order_update", "language": "pt_BR",
                                     "bodyParameters": ["#1"]}})
    assert ok.status_code == 201, ok.text


async def test_the_tenants_line_is_set_shown_masked_and_cleared(
        client: Client, tenant: Tenant, settings: GatewaySettings, db: AsyncDatabase[Document]) -> None:
    k = await keys(db, tenant.id)
    empty = await client.get(LINE, headers=k["read"])
    assert empty.status_code == 200
    assert empty.json()["data"] == {
        "whatsappPhoneNumberId": None, "usesPlatformDefault": True, "platformLineConfigured": False,
        "accessTokenConfigured": False, "accessTokenHint": None, "needsAttention": False,
        "attentionReason": None, "updatedAt": None}
    token = "EAAGm0PX4ZCpsBAKZC-tenant-secret-token-9xQz"
    r = await client.patch(LINE, headers=k["admin"], json={
        "whatsappPhoneNumberId": "200000000000001", "whatsappAccessToken": token})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert (data["whatsappPhoneNumberId"], data["usesPlatformDefault"]) == ("200000000000001", False)
    assert (data["accessTokenConfigured"], data["accessTokenHint"]) == (True, "…9xQz")
    assert token not in r.text
    shown = await client.get(LINE, headers=k["read"])
    assert shown.json()["data"] == data and token not in shown.text

    stored = await db[TENANTS].find_one({"_id": tenant.id})
    assert stored is not None
    sealed = stored["whatsapp_line"]["access_token"]
    assert sealed.startswith("enc:v1:") and token not in sealed
    keyring = Keyring(settings.secret_keys)
    context = f"tenants.whatsapp_line.access_token:{tenant.id}"
    assert keyring.decrypt(sealed, context=context) == token

    # the dispatcher flagged the token (Meta error 190); a new token clears the flag
    await db[TENANTS].update_one({"_id": tenant.id}, {"$set": {
        "whatsapp_line.needs_attention": True, "whatsapp_line.attention_reason": "token expired"}})
    flagged = (await client.get(LINE, headers=k["read"])).json()["data"]
    assert (flagged["needsAttention"], flagged["attentionReason"]) == (True, "token expired")
    renewed = await client.patch(LINE, headers=k["admin"], json={"whatsappAccessToken": "EAAG-new-1234"})
    assert renewed.json()["data"]["needsAttention"] is False
    assert renewed.json()["data"]["accessTokenHint"] == "…1234"
    assert renewed.json()["data"]["whatsappPhoneNumberId"] == "200000000000001"

    cleared = await client.patch(LINE, headers=k["admin"], json={"whatsappPhoneNumberId": None,
                                                                  "whatsappAccessToken": None})
    assert cleared.json()["data"]["usesPlatformDefault"] is True
    assert cleared.json()["data"]["accessTokenConfigured"] is False
    stored = await db[TENANTS].find_one({"_id": tenant.id})
    assert stored is not None and "access_token" not in stored["whatsapp_line"]


async def test_a_phone_number_id_belongs_to_one_tenant(
        tenant: Tenant, settings: GatewaySettings, db: AsyncDatabase[Document]) -> None:
    with_platform = msgspec.structs.replace(settings, whatsapp_phone_number_id=PLATFORM_PHONE)
    other = await make_tenant(db, "Other")
    mine, theirs = await keys(db, tenant.id), await keys(db, other.id)
    async with AsyncTestClient(create_app(with_platform)) as client:
        first = await client.patch(LINE, headers=mine["admin"], json={
            "whatsappPhoneNumberId": "200000000000001"})
        assert first.status_code == 200 and first.json()["data"]["platformLineConfigured"] is True
        again = await client.patch(LINE, headers=mine["admin"], json={
            "whatsappPhoneNumberId": "200000000000001"})
        assert again.status_code == 200  # one's own number again is fine
        taken = await client.patch(LINE, headers=theirs["admin"], json={
            "whatsappPhoneNumberId": "200000000000001", "whatsappAccessToken": "EAAG-other-token"})
        assert taken.status_code == 409
        assert taken.json() == {
            "success": False, "error": "WHATSAPP_PHONE_NUMBER_ID_IN_USE",
            "message": "the phone number id 200000000000001 is already in use by another account",
            "code": 409}
        platform = await client.patch(LINE, headers=theirs["admin"], json={
            "whatsappPhoneNumberId": PLATFORM_PHONE})
        assert (platform.status_code, platform.json()["error"]) == (409, "WHATSAPP_PHONE_NUMBER_ID_IN_USE")
        untouched = await db[TENANTS].find_one({"_id": other.id})
        assert untouched is not None and "whatsapp_line" not in untouched

        released = await client.patch(LINE, headers=mine["admin"], json={"whatsappPhoneNumberId": None})
        assert released.status_code == 200
        moved = await client.patch(LINE, headers=theirs["admin"], json={
            "whatsappPhoneNumberId": "200000000000001"})
        assert moved.status_code == 200
        # the unique index is the last word even when two tenants race past the check
        with pytest.raises(DuplicateKeyError):
            await db[TENANTS].update_one({"_id": tenant.id}, {"$set": {
                "whatsapp_line.phone_number_id": "200000000000001"}})


async def test_line_changes_are_validated_and_scoped(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document]) -> None:
    k = await keys(db, tenant.id)
    assert (await client.patch(LINE, headers=k["read"], json={"whatsappPhoneNumberId": "1234567"})
            ).status_code == 403
    assert (await client.get(LINE, headers=k["send"])).status_code == 403
    nothing = await client.patch(LINE, headers=k["admin"], json={})
    assert (nothing.status_code, nothing.json()["error"]) == (422, "validation_error")
    for body, field in (({"whatsappPhoneNumberId": "+1 555"}, "whatsappPhoneNumberId"),
                        ({"whatsappPhoneNumberId": 106540352242922}, "whatsappPhoneNumberId"),
                        ({"whatsappAccessToken": "has spaces in it"}, "whatsappAccessToken"),
                        ({"whatsappAccessToken": "short"}, "whatsappAccessToken"),
                        ({"phoneNumberId": "1234567"}, "phoneNumberId")):
        r = await client.patch(LINE, headers=k["admin"], json=body)
        assert (r.status_code, r.json().get("field")) == (422, field), r.text
    bad_json = await client.patch(LINE, headers=k["admin"], content=b"{nope")
    assert bad_json.status_code == 400
    stored = await db[TENANTS].find_one({"_id": tenant.id})
    assert stored is not None and "whatsapp_line" not in stored


async def test_a_conversation_shows_inbound_and_outbound_messages(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document]) -> None:
    k = await keys(db, tenant.id)
    t0 = utcnow()
    sent = await client.post("/v1/whatsapp/send", headers=k["send"],
                             json={"to": "+14155552671", "text": "Your order shipped"})
    assert sent.status_code == 201
    await db[CONVERSATIONS].insert_one({
        "_id": f"{tenant.id}:14155552671", "tenant_id": tenant.id, "wa_id": "14155552671",
        "contact_name": "Ada", "phone_number_id": PLATFORM_PHONE, "created_at": t0,
        "last_inbound_at": t0, "opted_out": True, "entries": [
            {"wamid": "wamid.in1", "type": "text", "body": "STOP", "occurred_at": t0,
             "keyword": "STOP"}]})
    await db[OPT_OUTS].insert_one({"_id": "oo_1", "tenant_id": tenant.id, "channel": "whatsapp",
                                   "address": "14155552671", "source": "whatsapp", "created_at": t0})
    await db[CONVERSATIONS].insert_one({"_id": "ten_else:14155552671", "tenant_id": "ten_else",
                                        "wa_id": "14155552671", "entries": []})
    for contact in ("14155552671", "+14155552671"):
        r = await client.get(f"/v1/whatsapp/conversations/{contact}", headers=k["send"])
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert (data["waId"], data["contactName"], data["optedOut"]) == ("14155552671", "Ada", True)
        directions = [(m["direction"], m["text"]) for m in data["messages"]]
        assert sorted(directions) == [("inbound", "STOP"), ("outbound", "Your order shipped")]
        outbound = next(m for m in data["messages"] if m["direction"] == "outbound")
        assert outbound["id"] == sent.json()["data"]["id"] and outbound["status"] == "QUEUED"
    listed = await client.get("/v1/whatsapp/conversations", headers=k["send"])
    assert listed.status_code == 200
    [item] = listed.json()["data"]
    assert (item["waId"], item["lastInboundText"]) == ("14155552671", "STOP")
    assert listed.json()["pagination"]["total"] == 1
    unknown = await client.get("/v1/whatsapp/conversations/14155550000", headers=k["send"])
    assert unknown.status_code == 404
    bad = await client.get("/v1/whatsapp/conversations/abc", headers=k["send"])
    assert (bad.status_code, bad.json()["field"]) == (422, "waId")
    assert (await client.get("/v1/whatsapp/conversations", headers=k["read"])).status_code == 403
    # message reads still work next to the conversation routes
    one = await client.get(f"/v1/whatsapp/{sent.json()['data']['id']}", headers=k["send"])
    assert one.status_code == 200
