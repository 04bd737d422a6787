"""SMS and WhatsApp sends from stored text templates: the same engine and store as email."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_platform import tenancy
from postwire_platform.mongo import Document

from .gateway_support import SENDER, VALID_TO, Tenant

Client = AsyncTestClient[Any]


async def test_an_sms_and_a_whatsapp_text_render_their_templates(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document]) -> None:
    key, _ = await tenancy.create_key(db, tenant.id, ["send:sms", "read:sms", "send:whatsapp",
                                                       "read:whatsapp", "templates:write"], mode="live")
    auth = {"Authorization": f"Bearer {key}"}
    sms_template = await client.post("/v1/templates", headers=auth, json={
        "name": "otp", "channel": "sms",
        "text": "{{ code }} is your code{% if minutes %}, valid {{ minutes }} min{% endif %}"})
    assert sms_template.status_code == 201, sms_template.text
    wa_template = await client.post("/v1/templates", headers=auth, json={
        "name": "hello", "channel": "whatsapp", "text": "Hi {{ name }}"})
    assert wa_template.status_code == 201, wa_template.text
    sms_id, wa_id = sms_template.json()["data"]["id"], wa_template.json()["data"]["id"]

    sent = await client.post("/v1/sms/send", headers=auth, json={
        "to": VALID_TO, "senderId": SENDER, "templateId": sms_id,
        "variables": {"code": "483920", "minutes": 5}})
    assert sent.status_code == 201, sent.text
    stored = await client.get(f"/v1/sms/{sent.json()['data']['id']}", headers=auth)
    assert stored.json()["data"]["body"] == "483920 is your code, valid 5 min"

    missing = await client.post("/v1/sms/send", headers=auth, json={
        "to": VALID_TO, "senderId": SENDER, "templateId": sms_id, "variables": {}})
    assert (missing.status_code, missing.json()["error"], missing.json()["field"]) == (
        422, "missing_variable", "variables")
    both = await client.post("/v1/sms/send", headers=auth, json={
        "to": VALID_TO, "senderId": SENDER, "templateId": sms_id, "body": "x"})
    assert (both.status_code, both.json()["field"]) == (422, "body")
    neither = await client.post("/v1/sms/send", headers=auth, json={"to": VALID_TO, "senderId": SENDER})
    assert (neither.status_code, neither.json()["field"]) == (422, "body")
    wrong_channel = await client.post("/v1/sms/send", headers=auth, json={
        "to": VALID_TO, "senderId": SENDER, "templateId": wa_id, "variables": {"name": "x"}})
    assert (wrong_channel.status_code, wrong_channel.json()["error"]) == (
        422, "template_channel_mismatch")

    wa = await client.post("/v1/whatsapp/send", headers=auth, json={
        "to": VALID_TO, "templateId": wa_id, "variables": {"name": "Ada"}})
    assert wa.status_code == 201, wa.text
    assert wa.json()["data"]["text"] == "Hi Ada"
    assert await db["messages"].count_documents({"tenant_id": tenant.id}) == 2
