"""Templates, sending domains (verified through a local DNS server) and email sends built on them."""

from __future__ import annotations

from typing import Any

import aio_pika
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts import topology
from postwire_contracts.messages import SendEmail
from postwire_gateway.settings import GatewaySettings
from postwire_platform import tenancy
from postwire_platform.mongo import DOMAINS, Document
from postwire_platform.secrets_at_rest import Keyring
from postwire_testing.dns_server import DnsServer

from .gateway_support import Tenant

Client = AsyncTestClient[Any]

RECEIPT_HTML = ("<html><head><style>.total { font-weight: bold }</style></head><body>"
                "<p>Hi {{ name }},</p>{% if coupon is defined %}<p>Code: {{ coupon }}</p>{% endif %}"
                "<p class='total'>Total: {{ total }}</p></body></html>")


@pytest.fixture
def dns_server() -> Any:
    with DnsServer() as server:
        yield server


@pytest.fixture
def settings(amqp_url: str, mongodb_url: str, db_name: str, dns_server: DnsServer,
             settings: GatewaySettings) -> GatewaySettings:
    return msgspec.structs.replace(settings, dns_nameservers=dns_server.nameserver)


async def keys(db: AsyncDatabase[Document], tenant: Tenant) -> dict[str, dict[str, str]]:
    scopes = {"live": ["send:email", "read:email", "templates:write", "members:write"],
              "test": ["send:email", "read:email"], "reader": ["read:email"]}
    out = {}
    for name, wanted in scopes.items():
        key, _ = await tenancy.create_key(db, tenant.id, wanted,
                                          mode="test" if name == "test" else "live")
        out[name] = {"Authorization": f"Bearer {key}"}
    return out


async def drain_commands(amqp_url: str) -> list[SendEmail]:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(topology.EMAIL_SEND_QUEUE, ensure=True)
        commands = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            command = msgspec.json.decode(message.body, type=SendEmail)
            commands.append(command)
        return commands
    finally:
        await connection.close()


async def test_templates_have_versions_that_publish_and_roll_back(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document]) -> None:
    auth = await keys(db, tenant)
    created = await client.post("/v1/templates", headers=auth["live"], json={
        "name": "receipt", "subject": "Receipt for {{ name }}", "html": RECEIPT_HTML})
    assert created.status_code == 201, created.text
    template = created.json()["data"]
    assert (template["publishedVersion"], template["latestVersion"], template["channel"]) == (
        1, 1, "email")
    tid = template["id"]
    duplicate = await client.post("/v1/templates", headers=auth["live"], json={
        "name": "receipt", "subject": "x", "text": "y"})
    assert (duplicate.status_code, duplicate.json()["error"]) == (409, "template_exists")
    broken = await client.post("/v1/templates", headers=auth["live"], json={
        "name": "broken", "subject": "x", "text": "{% if %}"})
    assert (broken.status_code, broken.json()["error"], broken.json()["field"]) == (
        422, "invalid_template", "text")
    sms_with_html = await client.post("/v1/templates", headers=auth["live"], json={
        "name": "otp", "channel": "sms", "html": "<p>x</p>"})
    assert (sms_with_html.status_code, sms_with_html.json()["field"]) == (422, "html")
    forbidden = await client.post("/v1/templates", headers=auth["reader"], json={
        "name": "x", "subject": "x", "text": "y"})
    assert forbidden.status_code == 403

    v2 = await client.post(f"/v1/templates/{tid}/versions", headers=auth["live"], json={
        "subject": "Your receipt, {{ name }}", "html": RECEIPT_HTML, "note": "new subject"})
    assert v2.status_code == 201 and v2.json()["data"]["version"] == 2
    assert v2.json()["data"]["published"] is False
    published = await client.post(f"/v1/templates/{tid}/versions/2/publish", headers=auth["live"])
    assert published.json()["data"]["publishedVersion"] == 2
    assert published.json()["data"]["published"]["subject"] == "Your receipt, {{ name }}"
    versions = await client.get(f"/v1/templates/{tid}/versions", headers=auth["reader"])
    assert [v["version"] for v in versions.json()["data"]] == [2, 1]
    rolled = await client.post(f"/v1/templates/{tid}/rollback", headers=auth["live"])
    assert rolled.json()["data"]["publishedVersion"] == 1
    again = await client.post(f"/v1/templates/{tid}/rollback", headers=auth["live"])
    assert (again.status_code, again.json()["error"]) == (409, "nothing_to_roll_back")
    listed = await client.get("/v1/templates", headers=auth["reader"], params={"channel": "email"})
    assert [t["name"] for t in listed.json()["data"]] == ["receipt"]
    preview = await client.post(f"/v1/templates/{tid}/preview", headers=auth["reader"], json={
        "version": 2, "variables": {"name": "Ada", "total": "12 EUR"}})
    assert preview.json()["data"]["subject"] == "Your receipt, Ada"
    other = await tenancy.create_tenant(db, "Other")
    other_key, _ = await tenancy.create_key(db, other["_id"], ["templates:write"])
    hidden = await client.get(f"/v1/templates/{tid}", headers={"Authorization": f"Bearer {other_key}"})
    assert hidden.status_code == 404


async def test_a_templated_send_is_rendered_inlined_and_a_missing_variable_is_422(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document], amqp_url: str) -> None:
    auth = await keys(db, tenant)
    await drain_commands(amqp_url)
    tid = (await client.post("/v1/templates", headers=auth["live"], json={
        "name": "receipt", "subject": "Receipt for {{ name }}", "html": RECEIPT_HTML})).json()["data"]["id"]
    missing = await client.post("/v1/emails/send", headers=auth["test"], json={
        "from": "shop@unverified.example", "to": ["ada@example.com"], "templateId": tid,
        "variables": {"name": "Ada"}})
    assert (missing.status_code, missing.json()["error"], missing.json()["field"]) == (
        422, "missing_variable", "variables")
    assert "'total'" in missing.json()["message"]
    assert await db["messages"].count_documents({}) == 0

    sent = await client.post("/v1/emails/send", headers=auth["test"], json={
        "from": "Shop <shop@unverified.example>", "to": ["ada@example.com", "bob@example.com"],
        "bcc": ["audit@shop.example"], "templateId": tid, "trackClicks": False,
        "variables": {"name": "<Ada>", "total": "12 EUR", "coupon": "SAVE10"}})
    assert sent.status_code == 201, sent.text
    data = sent.json()["data"]
    assert [(m["to"], m["recipientType"]) for m in data["messages"]] == [
        ("ada@example.com", "to"), ("bob@example.com", "to"), ("audit@shop.example", "bcc")]
    assert data["id"] == data["messages"][0]["id"] and data["templateVersion"] == 1
    assert data["subject"] == "Receipt for <Ada>" and data["trackClicks"] is False
    commands = {c.message_id: c for c in await drain_commands(amqp_url)}
    assert set(commands) == {m["id"] for m in data["messages"]}
    command = commands[data["id"]]
    assert command.to == ["ada@example.com"]
    assert command.display_to == ["ada@example.com", "bob@example.com"]
    assert "&lt;Ada&gt;" in (command.html or "") and "Code: SAVE10" in (command.html or "")
    assert 'style="font-weight: bold;"' in (command.html or "") and "<style>" not in (command.html or "")
    assert command.text is not None and "Total: 12 EUR" in command.text
    assert (command.template_id, command.track_opens, command.track_clicks) == (tid, True, False)
    for message in data["messages"]:
        one = await client.get(f"/v1/emails/{message['id']}", headers=auth["test"])
        assert one.json()["data"]["status"] == "QUEUED" and one.json()["data"]["groupId"] == data["id"]


async def test_a_domain_gets_a_dkim_key_and_verifies_through_dns(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document], dns_server: DnsServer,
        settings: GatewaySettings) -> None:
    auth = await keys(db, tenant)
    body = {"from": "orders@Shop.example", "to": ["ada@example.com"], "subject": "Hi", "text": "x"}
    unverified = await client.post("/v1/emails/send", headers=auth["live"], json=body)
    assert (unverified.status_code, unverified.json()["error"], unverified.json()["field"]) == (
        422, "domain_not_verified", "from")
    assert (await client.post("/v1/emails/send", headers=auth["test"], json=body)).status_code == 201

    created = await client.post("/v1/domains", headers=auth["live"], json={"domain": "Shop.Example"})
    assert created.status_code == 201, created.text
    domain = created.json()["data"]
    assert domain["status"] == "pending" and domain["domain"] == "shop.example"
    records = {r["purpose"]: r for r in domain["dnsRecords"]}
    assert records["dkim"]["name"] == f"{domain['dkimSelector']}._domainkey.shop.example"
    assert records["dkim"]["value"].startswith("v=DKIM1; k=rsa; p=MII")
    assert records["spf"]["value"] == "v=spf1 include:spf.postwire.example ~all"
    assert (records["return_path"]["type"], records["return_path"]["name"]) == (
        "CNAME", "pwbounces.shop.example")
    duplicate = await client.post("/v1/domains", headers=auth["live"], json={"domain": "shop.example"})
    assert (duplicate.status_code, duplicate.json()["error"]) == (409, "domain_exists")
    bad = await client.post("/v1/domains", headers=auth["live"], json={"domain": "not a domain"})
    assert (bad.status_code, bad.json()["field"]) == (422, "domain")
    stored = await db[DOMAINS].find_one({"_id": domain["id"]})
    assert stored is not None and stored["dkim_private_key"].startswith("enc:v1:")
    pem = Keyring(settings.secret_keys).decrypt(stored["dkim_private_key"],
                                                context=f"domains.dkim_private_key:{domain['id']}")
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")

    nothing = await client.post(f"/v1/domains/{domain['id']}/verify", headers=auth["live"])
    assert nothing.status_code == 200 and nothing.json()["data"]["status"] == "pending"
    assert nothing.json()["data"]["checks"]["dkim"]["ok"] is False
    dns_server.add_txt(records["dkim"]["name"], records["dkim"]["value"])
    dns_server.add_txt("shop.example", "v=spf1 include:_spf.google.com include:spf.postwire.example ~all")
    dns_server.add(records["return_path"]["name"], "CNAME", "bounces.postwire.example.")
    verified = await client.post(f"/v1/domains/{domain['id']}/verify", headers=auth["live"])
    data = verified.json()["data"]
    assert data["status"] == "verified" and data["returnPathVerified"] is True
    assert all(r["verified"] for r in data["dnsRecords"])
    ok = await client.post("/v1/emails/send", headers=auth["live"],
                           json={**body, "from": "orders@mail.shop.example"})
    assert ok.status_code == 201, ok.text
    listed = await client.get("/v1/domains", headers=auth["reader"])
    assert [d["domain"] for d in listed.json()["data"]] == ["shop.example"]
    assert "dkim_private_key" not in str(listed.json())
