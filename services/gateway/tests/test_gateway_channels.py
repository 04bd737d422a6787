"""Email and WhatsApp sends and the list filters, through the same accept and read paths as SMS."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aio_pika
import msgspec
from litestar.testing import AsyncTestClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts import topology
from postwire_contracts.messages import SendCommand, SendEmail, SendWhatsApp
from postwire_platform import tenancy
from postwire_platform.clock import utcnow
from postwire_platform.mongo import Document

from .gateway_support import SENDER, VALID_TO, Tenant

Client = AsyncTestClient[Any]


async def take(amqp_url: str, queue_name: str) -> SendCommand:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name, ensure=True)
        message = await queue.get(no_ack=True, timeout=5)
        assert message is not None
        command: SendCommand = msgspec.json.decode(message.body, type=SendCommand)
        return command
    finally:
        await connection.close()


async def all_channels_key(db: AsyncDatabase[Document], tenant: Tenant) -> dict[str, str]:
    key, _ = await tenancy.create_key(db, tenant.id, ["send:email", "read:email", "send:whatsapp",
                                                       "read:whatsapp"], mode="live")
    return {"Authorization": f"Bearer {key}"}


async def test_an_email_is_validated_stored_published_and_read_back(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document], amqp_url: str) -> None:
    auth = await all_channels_key(db, tenant)
    bad = await client.post("/v1/emails/send", headers=auth, json={
        "from": "no-at-sign", "to": ["a@example.com"], "subject": "Hi", "text": "x"})
    assert (bad.status_code, bad.json()["error"], bad.json()["field"]) == (422, "invalid_email", "from")
    no_body = await client.post("/v1/emails/send", headers=auth, json={
        "from": "shop@example.com", "to": ["a@example.com"], "subject": "Hi"})
    assert (no_body.status_code, no_body.json()["field"]) == (422, "html")

    await db["domains"].insert_one({"_id": "dom_1", "tenant_id": tenant.id, "domain": "example.com",
                                    "status": "verified"})  # live keys send from verified domains
    sent = await client.post("/v1/emails/send", headers=auth, json={
        "from": "shop@example.com", "to": ["Ann@Example.com"], "subject": "Your receipt",
        "html": "<p>Thanks</p>", "metadata": {"order": "7"}, "externalId": "rcpt-7"})
    assert sent.status_code == 201, sent.text
    data = sent.json()["data"]
    assert (data["channel"], data["status"], data["from"], data["subject"]) == (
        "email", "QUEUED", "shop@example.com", "Your receipt")
    command = await take(amqp_url, topology.EMAIL_SEND_QUEUE)
    assert isinstance(command, SendEmail)
    assert (command.message_id, command.to, command.metadata) == (
        data["id"], ["Ann@example.com"], {"order": "7"})
    assert "<p>Thanks</p>" in (command.html or "") and command.text == "Thanks\n"  # derived text

    one = await client.get(f"/v1/emails/{data['id']}", headers=auth)
    assert one.status_code == 200 and one.json()["data"]["externalId"] == "rcpt-7"
    timeline = await client.get(f"/v1/emails/{data['id']}/timeline", headers=auth)
    assert [e["status"] for e in timeline.json()["data"]] == ["QUEUED"]
    listed = await client.get("/v1/emails", headers=auth, params={"query": "ann@"})
    assert [m["id"] for m in listed.json()["data"]] == [data["id"]]
    # the SMS key may not read email, and an email id is not an SMS
    assert (await client.get(f"/v1/emails/{data['id']}", headers=tenant.auth())).status_code == 403
    assert (await client.get(f"/v1/sms/{data['id']}", headers=tenant.auth())).status_code == 404


async def test_a_whatsapp_text_or_template_is_accepted_but_not_both_or_neither(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document], amqp_url: str) -> None:
    auth = await all_channels_key(db, tenant)
    both = await client.post("/v1/whatsapp/send", headers=auth, json={
        "to": VALID_TO, "text": "hi", "template": {"name": "otp", "language": "en"}})
    neither = await client.post("/v1/whatsapp/send", headers=auth, json={"to": VALID_TO})
    assert both.status_code == neither.status_code == 422
    sent = await client.post("/v1/whatsapp/send", headers=auth, json={
        "to": VALID_TO, "template": {"name": "otp", "language": "en_US", "bodyParameters": ["123"]}})
    assert sent.status_code == 201, sent.text
    data = sent.json()["data"]
    assert data["template"] == {"name": "otp", "language": "en_US", "bodyParameters": ["123"]}
    command = await take(amqp_url, topology.WHATSAPP_SEND_QUEUE)
    assert isinstance(command, SendWhatsApp) and command.template is not None
    assert (command.message_id, command.to, command.template.body_parameters) == (
        data["id"], VALID_TO, ["123"])
    read = await client.get(f"/v1/whatsapp/{data['id']}", headers=auth)
    assert read.json()["data"]["template"]["name"] == "otp"


async def test_list_filters_by_query_status_flow_and_dates_and_refuses_bad_parameters(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document]) -> None:
    old = utcnow() - timedelta(days=3)
    await db["messages"].insert_many([
        {"_id": f"m{i}", "tenant_id": tenant.id, "channel": "sms", "status": status, "to": to,
         "body": body, "sender_id": SENDER, "flow": flow, "external_id": ext, "metadata": {},
         "live": True, "accepted_at": old if i == 0 else utcnow(), "timeline": []}
        for i, (status, to, body, flow, ext) in enumerate([
            ("DELIVERED", "+14155550100", "old one", "STANDARD", "e0"),
            ("FAILED", "+2348067000001", "your code", "OTP", "e1"),
            ("DELIVERED", "+14155550102", "receipt", "STANDARD", "ORDER-9")])])

    async def ids(**params: Any) -> list[str]:
        response = await client.get("/v1/sms", headers=tenant.auth(), params=params)
        assert response.status_code == 200, response.text
        return sorted(m["id"] for m in response.json()["data"])

    assert await ids(query="2348067") == ["m1"]
    assert await ids(query="order-9") == ["m2"]  # external id, case-insensitive
    assert await ids(query="CODE") == ["m1"]
    assert await ids(query="a.b(") == []  # taken literally, not as a pattern
    assert await ids(status="DELIVERED") == ["m0", "m2"]
    assert await ids(flow="OTP") == ["m1"]
    since = (utcnow() - timedelta(days=1)).isoformat()
    assert await ids(dateFrom=since) == ["m1", "m2"]
    assert await ids(dateTo=(old + timedelta(seconds=1)).isoformat()) == ["m0"]

    for params, field in (({"pageSize": "101"}, "pageSize"), ({"page": "0"}, "page"),
                          ({"status": "LOST"}, "status"), ({"dateFrom": "yesterday"}, "dateFrom"),
                          ({"dateFrom": "2026-02-01", "dateTo": "2026-01-01"}, "dateFrom"),
                          ({"query": "x" * 201}, "query")):
        response = await client.get("/v1/sms", headers=tenant.auth(), params=params)
        assert (response.status_code, response.json()["field"]) == (422, field), params
