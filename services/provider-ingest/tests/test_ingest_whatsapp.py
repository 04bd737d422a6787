"""The WhatsApp webhook against the real broker and SecantusDB: handshake, signatures, statuses,
inbound messages kept on conversations, STOP/START, routing to tenants."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts.messages import (
    InboundReceived,
    StatusEvent,
    any_notification_decoder,
    event_decoder,
    event_message_decoder,
)
from postwire_contracts.status import Status
from postwire_platform.broker import BrokerUnavailable
from postwire_platform.mongo import CONVERSATIONS, MESSAGES, OPT_OUTS, TENANTS, Document
from postwire_provider_ingest.app import create_app
from postwire_provider_ingest.settings import ProviderIngestSettings
from postwire_testing.bus_tap import BusTap, bus_tap

PATH = "/v1/webhooks/whatsapp"
SECRET = "app-secret"
LINE = "106540352242922"
MESSAGE_ID = "01JD0000000000000000000002"


def sign(raw: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def envelope(value: dict[str, Any], phone: str = LINE) -> dict[str, Any]:
    return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [
        {"field": "messages", "value": {"messaging_product": "whatsapp",
                                        "metadata": {"display_phone_number": "15550783881",
                                                     "phone_number_id": phone}, **value}}]}]}


def statuses(*items: dict[str, Any], phone: str = LINE) -> dict[str, Any]:
    return envelope({"statuses": list(items)}, phone)


def status(wamid: str, value: str, ts: int = 1749416383, **extra: Any) -> dict[str, Any]:
    return {"id": wamid, "status": value, "timestamp": str(ts), "recipient_id": "15551234567",
            **extra}


def inbound(sender: str, text: str, wamid: str, ts: int = 1749416383, phone: str = LINE,
            name: str = "Sheena Nelson") -> dict[str, Any]:
    return envelope({"contacts": [{"profile": {"name": name}, "wa_id": sender}],
                     "messages": [{"from": sender, "id": wamid, "timestamp": str(ts), "type": "text",
                                   "text": {"body": text}}]}, phone)


def settings(amqp_url: str, mongodb_url: str, db_name: str, **kw: Any) -> ProviderIngestSettings:
    values: dict[str, Any] = {
        "amqp_url": amqp_url, "mongodb_url": mongodb_url, "mongodb_database": db_name,
        "whatsapp_app_secret": SECRET, "whatsapp_verify_token": "verify-me",
        "whatsapp_line_cache_seconds": 0.0, "shutdown_timeout": 5.0, "log_json": False}
    values.update(kw)
    return ProviderIngestSettings(**values)


@pytest.fixture
async def bus(amqp_url: str) -> AsyncIterator[BusTap]:
    # statuses of one notification may go out together (``STATUS_GROUPS``): the tap splits them
    async with bus_tap(amqp_url, {"status": ("event.status.whatsapp", event_message_decoder),
                                  "inbound": ("event.inbound.whatsapp", event_decoder),
                                  "notify": ("notify.inbound.#", any_notification_decoder)}) as tap:
        yield tap


@pytest.fixture
async def client(amqp_url: str, mongodb_url: str, db_name: str,
                 db: AsyncDatabase[Document]) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(settings(amqp_url, mongodb_url, db_name, whatsapp_default_tenant_id="ten_default",
                              whatsapp_line_map={"300000000000003": "ten_mapped"}))
    async with AsyncTestClient(app) as c:
        yield c


async def post(client: AsyncTestClient[Any], payload: dict[str, Any],
               signature: str | None = "sign") -> Any:
    raw = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if signature == "sign":
        headers["X-Hub-Signature-256"] = sign(raw)
    elif signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return await client.post(PATH, content=raw, headers=headers)


async def test_the_verification_handshake(client: AsyncTestClient[Any]) -> None:
    ok = await client.get(PATH, params={"hub.mode": "subscribe", "hub.verify_token": "verify-me",
                                        "hub.challenge": "1158201444"})
    assert (ok.status_code, ok.text) == (200, "1158201444")
    assert ok.headers["content-type"].startswith("text/plain")
    for params in ({"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"},
                   {"hub.mode": "unsubscribe", "hub.verify_token": "verify-me", "hub.challenge": "1"},
                   {"hub.challenge": "1"}):
        refused = await client.get(PATH, params=params)
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden"


async def test_a_forged_or_missing_signature_publishes_nothing(
        client: AsyncTestClient[Any], bus: BusTap, db: AsyncDatabase[Document]) -> None:
    payload = inbound("16505551234", "STOP", "wamid.forged")
    raw = json.dumps(payload).encode()
    for header in (None, sign(raw, "wrong-secret"), "sha256=" + "0" * 64, "garbage"):
        r = await post(client, payload, signature=header)
        assert r.status_code == 401
        assert r.json() == {"success": False, "error": "invalid_signature",
                            "message": "missing or invalid X-Hub-Signature-256", "code": 401}
    tampered = raw.replace(b"STOP", b"START")
    r = await client.post(PATH, content=tampered, headers={"X-Hub-Signature-256": sign(raw)})
    assert r.status_code == 401
    # a correctly signed notification afterwards is the only thing that comes through
    assert (await post(client, statuses(status("wamid.real", "sent")))).status_code == 200
    await bus.wait("status", 1)
    assert [e.provider_message_id for e in bus.of("status")] == ["wamid.real"]
    assert bus.of("inbound") == [] and bus.of("notify") == []
    assert await db[OPT_OUTS].count_documents({}) == 0


async def test_statuses_become_events_deduplicated_on_wamid_and_status(
        client: AsyncTestClient[Any], bus: BusTap) -> None:
    failed = status("wamid.B", "failed", errors=[{
        "code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
        "error_data": {"details": "More than 24 hours have passed since the recipient last replied"}}])
    payload = statuses(
        status("wamid.A", "read", 1749416390, biz_opaque_callback_data=MESSAGE_ID),
        status("wamid.A", "delivered", 1749416385, biz_opaque_callback_data=MESSAGE_ID),
        status("wamid.A", "sent", 1749416383, biz_opaque_callback_data=MESSAGE_ID,
               pricing={"billable": True, "pricing_model": "PMP", "category": "utility"}),
        failed, status("wamid.C", "deleted"))
    assert (await post(client, payload)).status_code == 200
    assert (await post(client, payload)).status_code == 200  # Meta delivers at least once
    events: list[StatusEvent] = await bus.wait("status", 8)
    assert len({e.event_id for e in events}) == 4
    by_id = {e.event_id: e for e in events}
    read = by_id["wa:wamid.A:read"]
    assert (read.status, read.message_id, read.provider_message_id, read.provider_status) == (
        Status.READ, MESSAGE_ID, "wamid.A", "read")
    assert read.occurred_at == datetime.fromtimestamp(1749416390, UTC)
    assert read.source == "meta-webhook"
    assert read.tenant_id is None  # the platform's shared line names no tenant: the message does
    assert by_id["wa:wamid.A:delivered"].status is Status.DELIVERED
    sent = by_id["wa:wamid.A:sent"]
    assert sent.status is Status.SENT and sent.detail["pricing"]["category"] == "utility"
    assert json.loads(sent.raw or "")["pricing"]["billable"] is True  # Meta's status, as sent
    bad = by_id["wa:wamid.B:failed"]
    assert (bad.status, bad.error_code, bad.message_id) == (Status.FAILED, "131047", None)
    assert "More than 24 hours have passed" in (bad.error_reason or "")
    assert bad.detail["errors"][0]["code"] == 131047


@pytest.mark.parametrize("grouped", [True, False])
async def test_statuses_of_one_notification_share_amqp_messages_unless_switched_off(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document],
        bus: BusTap, grouped: bool) -> None:
    app = create_app(settings(amqp_url, mongodb_url, db_name, status_groups=grouped,
                              whatsapp_default_tenant_id="ten_default"))
    payload = statuses(*(status(f"wamid.G{i}", state) for i in range(4)
                         for state in ("sent", "delivered")))
    async with AsyncTestClient(app) as c:
        assert (await post(c, payload)).status_code == 200
    events: list[StatusEvent] = await bus.wait("status", 8)
    assert sorted(e.event_id for e in events) == sorted(
        f"wa:wamid.G{i}:{state}" for i in range(4) for state in ("sent", "delivered"))
    if grouped:
        # all eight queue before the first publish starts, and go out in one, in Meta's order
        assert bus.deliveries["status"] == 1
        for i in range(4):
            assert [e.provider_status for e in events
                    if e.provider_message_id == f"wamid.G{i}"] == ["sent", "delivered"]
    else:  # one message each (reporting moves a status forwards only, whatever the order)
        assert bus.deliveries["status"] == 8


async def test_stop_and_start_keep_the_conversation_and_the_opt_out(
        client: AsyncTestClient[Any], bus: BusTap, db: AsyncDatabase[Document]) -> None:
    await db[TENANTS].insert_one({"_id": "ten_own", "name": "Own", "status": "active",
                                  "whatsapp_line": {"phone_number_id": LINE}})
    assert (await post(client, inbound("16505551234", "Hello there", "wamid.1", 100))).status_code == 200
    assert (await post(client, inbound("16505551234", " stop! ", "wamid.2", 200))).status_code == 200
    notes: list[InboundReceived] = await bus.wait("notify", 2)
    hello, stop = sorted(notes, key=lambda n: n.occurred_at)
    assert (hello.event_type, hello.tenant_id, hello.sender, hello.recipient, hello.body) == (
        "whatsapp_inbound", "ten_own", "16505551234", LINE, "Hello there")
    assert hello.contact_name == "Sheena Nelson" and hello.opt_change is None
    assert (stop.opt_change, stop.provider_message_id) == ("opted_out", "wamid.2")
    opt_out = await db[OPT_OUTS].find_one({"tenant_id": "ten_own", "channel": "whatsapp"})
    assert opt_out is not None
    assert (opt_out["address"], opt_out["keyword"], opt_out["source"]) == ("16505551234", "STOP",
                                                                           "whatsapp")
    conversation = await db[CONVERSATIONS].find_one({"_id": "ten_own:16505551234"})
    assert conversation is not None
    assert [e["body"] for e in conversation["entries"]] == ["Hello there", " stop! "]
    assert conversation["opted_out"] is True and conversation["contact_name"] == "Sheena Nelson"
    [event] = [e for e in await bus.wait("inbound", 2) if e.provider_message_id == "wamid.2"]
    assert event.tenant_id == "ten_own" and event.event_id == "wa-in:wamid.2"
    assert event.source == "whatsapp" and event.detail["message_type"] == "text"

    # a redelivered STOP changes nothing; an older START after it is ignored; a newer one opts back in
    assert (await post(client, inbound("16505551234", " stop! ", "wamid.2", 200))).status_code == 200
    assert (await post(client, inbound("16505551234", "START", "wamid.0", 150))).status_code == 200
    await bus.wait("notify", 4)
    assert await db[OPT_OUTS].count_documents({"tenant_id": "ten_own"}) == 1
    assert (await post(client, inbound("16505551234", "start", "wamid.3", 300))).status_code == 200
    [back_in] = await bus.wait("notify", 1, predicate=lambda n: n.provider_message_id == "wamid.3")
    assert back_in.opt_change == "opted_in"
    assert await db[OPT_OUTS].count_documents({"tenant_id": "ten_own"}) == 0
    conversation = await db[CONVERSATIONS].find_one({"_id": "ten_own:16505551234"})
    assert conversation is not None
    assert sorted(e["wamid"] for e in conversation["entries"]) == [
        "wamid.0", "wamid.1", "wamid.2", "wamid.3"]
    assert conversation["opted_out"] is False


async def test_numbers_are_routed_by_tenant_line_then_map_then_default(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document],
        bus: BusTap) -> None:
    await db[TENANTS].insert_one({"_id": "ten_own", "name": "Own", "status": "active",
                                  "whatsapp_line": {"phone_number_id": "200000000000002"}})
    app = create_app(settings(amqp_url, mongodb_url, db_name,
                              whatsapp_line_map={"300000000000003": "ten_mapped",
                                                 "200000000000002": "ten_loses"}))
    async with AsyncTestClient(app) as c:
        for phone, wamid in (("200000000000002", "w-own"), ("300000000000003", "w-map"),
                             ("400000000000004", "w-none")):
            r = await post(c, statuses(status(wamid, "delivered"), phone=phone))
            assert (r.status_code, r.json()) == (200, {"success": True})
        r = await post(c, inbound("16505551234", "hi", "w-in-none", phone="400000000000004"))
        assert r.status_code == 200
        events = await bus.wait("status", 3)
        await bus.wait("inbound", 1)
    tenants = {e.provider_message_id: e.tenant_id for e in events}
    assert tenants == {"w-own": "ten_own", "w-map": "ten_mapped", "w-none": None}
    assert bus.of("inbound")[0].tenant_id is None
    assert await db[CONVERSATIONS].count_documents({}) == 0  # kept only in reporting's ledger


async def test_inbound_on_the_default_line_goes_to_the_default_tenant(
        client: AsyncTestClient[Any], bus: BusTap, db: AsyncDatabase[Document]) -> None:
    r = await post(client, inbound("16505551234", "hi", "w-default", phone="900000000000009"))
    assert r.status_code == 200
    [note] = await bus.wait("notify", 1)
    assert note.tenant_id == "ten_default"
    assert await db[CONVERSATIONS].find_one({"_id": "ten_default:16505551234"}) is not None


async def test_bad_bodies_and_broker_outages(client: AsyncTestClient[Any]) -> None:
    raw = b"{not json"
    r = await client.post(PATH, content=raw, headers={"X-Hub-Signature-256": sign(raw)})
    assert (r.status_code, r.json()["error"]) == (400, "invalid_json")
    other = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": "message_template_status_update", "value": {"event": "APPROVED"}}]}]}
    assert (await post(client, other)).status_code == 200

    class Down:
        async def publish(self, *args: Any, **kwargs: Any) -> None:
            raise BrokerUnavailable("no confirm")

    client.app.state.runtime.publisher = Down()
    r = await post(client, statuses(status("wamid.D", "sent")))
    assert (r.status_code, r.json()["error"]) == (503, "service_unavailable")


async def test_the_endpoint_can_be_switched_off(amqp_url: str, mongodb_url: str, db_name: str) -> None:
    app = create_app(settings(amqp_url, mongodb_url, db_name, whatsapp_webhook_enabled=False))
    async with AsyncTestClient(app) as c:
        assert (await post(c, statuses(status("wamid.E", "sent")))).status_code == 404
        assert (await c.get(PATH, params={"hub.mode": "subscribe"})).status_code == 404


async def test_a_reply_on_the_shared_line_belongs_to_the_tenant_it_answers(
        client: AsyncTestClient[Any], bus: BusTap, db: AsyncDatabase[Document]) -> None:
    await db[MESSAGES].insert_one({"_id": "01JD0000000000000000000009", "tenant_id": "ten_sender",
                                   "channel": "whatsapp", "to": "+16505551234",
                                   "provider_message_id": "wamid.ours"})
    payload = inbound("16505551234", "STOP", "wamid.reply")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["context"] = {
        "from": "15550783881", "id": "wamid.ours"}
    assert (await post(client, payload)).status_code == 200
    [note] = await bus.wait("notify", 1)
    assert (note.tenant_id, note.opt_change) == ("ten_sender", "opted_out")
    assert await db[OPT_OUTS].find_one({"tenant_id": "ten_sender", "address": "16505551234"})
    assert await db[OPT_OUTS].find_one({"tenant_id": "ten_default"}) is None
