"""The client against the features other helpers add to the gateway in parallel: stats, the live
stream, templates, sending domains, webhook endpoint management, the WhatsApp line and conversations.

Each test runs once its routes are served by the gateway under test and is skipped (naming the route)
until then, so the client is checked against the real server as soon as the feature lands.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient

from postwire_client import (
    AsyncPostwire,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    Postwire,
    ValidationError,
)
from postwire_contracts import topology
from postwire_contracts.messages import StatusChanged
from postwire_contracts.status import Channel, Status
from postwire_platform import tenancy
from postwire_platform.broker import Publisher, make_broker
from postwire_platform.mongo import Document

from .sdk_support import Tenant


def needs(served: set[str], path: str) -> None:
    if path not in served:
        pytest.skip(f"{path} is not served by this gateway yet")


def client_for(tenant: Tenant, key: str | None = None) -> Postwire:
    return Postwire(key or tenant.key, base_url=tenant.base_url)


def test_stats(tenant: Tenant, served: set[str]) -> None:
    needs(served, "/v1/stats")
    today = datetime.now(UTC).date()
    with client_for(tenant) as client:
        client.sms.send(to="+14155552671", body="counted by reporting", sender_id="Postwire")
        stats = client.stats.get()
        assert (stats.date_to, stats.date_from, stats.mode) == (today, today - timedelta(days=6), "all")
        assert {c.channel for c in stats.channels} == {"email", "sms", "whatsapp"}
        assert all(len(c.days) == 7 for c in stats.channels)
        sms = client.stats.get(channel="sms", date_from=today, mode="live")
        assert [c.channel for c in sms.channels] == ["sms"] and sms.channels[0].days[0].date == today
        email = client.emails.stats(date_from=today - timedelta(days=1), date_to=today)
        assert [d.date for d in email.days] == [today - timedelta(days=1), today]
        assert email.engagement.opens >= 0
        with pytest.raises(ValidationError) as bad:
            client.stats.get(date_from=today, date_to=today - timedelta(days=1))
        assert bad.value.field == "dateFrom"
    with client_for(tenant, tenant.sms_read_key) as reader, pytest.raises(PermissionDeniedError):
        reader.stats.get()


@pytest.fixture
async def publisher(amqp_url: str) -> AsyncIterator[Publisher]:
    broker = make_broker(amqp_url)
    await broker.connect()
    yield Publisher(broker)
    await broker.stop()


async def notify(publisher: Publisher, tenant_id: str, channel: Channel, status: Status) -> StatusChanged:
    """A status change as reporting publishes it."""
    note = StatusChanged(
        event_id=f"evt_{uuid.uuid4().hex}", event_type=f"{channel.value}_{status.value.lower()}",
        tenant_id=tenant_id, message_id=f"msg_{uuid.uuid4().hex}", channel=channel, status=status,
        event_status=status, occurred_at=datetime(2026, 11, 21, 12, tzinfo=UTC),
        recipient="+14155552671", live=True, metadata={"order": "42"})
    await publisher.publish(note, topology.notify_key(channel), message_id=note.event_id)
    return note


async def test_the_live_stream(tenant: Tenant, served: set[str], publisher: Publisher,
                               mongo: AsyncMongoClient[Document], gateway_db: str) -> None:
    needs(served, "/v1/stream")
    other = await tenancy.create_tenant(mongo[gateway_db], "Other")
    async with AsyncPostwire(tenant.key, base_url=tenant.base_url) as client:
        async with client.stream() as everything, client.stream(channel="whatsapp") as whatsapp:
            assert everything.channels is None or set(everything.channels) == {"email", "sms", "whatsapp"}
            await asyncio.sleep(0)  # both sockets are open: their ready frames are on the way
            notes = [await notify(publisher, other["_id"], Channel.SMS, Status.SENT),
                     await notify(publisher, tenant.id, Channel.SMS, Status.DELIVERED),
                     await notify(publisher, tenant.id, Channel.WHATSAPP, Status.READ)]
            async with asyncio.timeout(30):
                first = await anext(everything)
                second = await anext(everything)
                only_whatsapp = await anext(whatsapp)
        assert everything.channels == ["email", "sms", "whatsapp"]
        assert [(e.message_id, e.type, e.status) for e in (first, second)] == [
            (notes[1].message_id, "sms_delivered", "DELIVERED"),
            (notes[2].message_id, "whatsapp_read", "READ")]
        assert first.metadata == {"order": "42"} and first.recipient == "+14155552671"
        assert only_whatsapp.message_id == notes[2].message_id
    async with AsyncPostwire("pw_live_unknown", base_url=tenant.base_url) as stranger:
        with pytest.raises(AuthenticationError):
            await stranger.stream().connect()


def test_templates_and_a_templated_send(tenant: Tenant, served: set[str]) -> None:
    needs(served, "/v1/templates")
    with client_for(tenant, tenant.test_key) as client:
        created = client.templates.create(name=f"receipt-{uuid.uuid4().hex[:6]}",
                                          subject="Receipt {{ order }}",
                                          html="<p>Hi {{ name }}</p>")
        assert created.version is not None and created.version.version == 1
        assert created.published_version == 1
        v2 = client.templates.create_version(created.id, subject="Your receipt {{ order }}",
                                             html="<p>Hello {{ name }}</p>", note="friendlier")
        assert (v2.version, v2.published) == (2, False)
        assert [v.version for v in client.templates.versions(created.id).data] == [2, 1]
        published = client.templates.publish(created.id, 2)
        assert published.published_version == 2 and published.published is not None
        preview = client.templates.preview(created.id, variables={"name": "Ann", "order": "#7"})
        assert (preview.version, preview.subject) == (2, "Your receipt #7") and "Ann" in (preview.html or "")
        assert client.templates.rollback(created.id).published_version == 1
        assert client.templates.get_version(created.id, 2).note == "friendlier"
        assert created.id in {t.id for t in client.templates.list_all(channel="email")}

        sent = client.emails.send(from_="noreply@acme.example", to=["ann@example.com", "bob@example.com"],
                                  template_id=created.id, variables={"name": "Ann", "order": "#8"})
        assert (sent.template_id, sent.template_version, sent.subject) == (created.id, 1, "Receipt #8")
        assert sent.messages is not None and [m.to for m in sent.messages] == [
            "ann@example.com", "bob@example.com"]
        with pytest.raises(ConflictError):
            client.templates.create(name=created.name, subject="x", html="<p>x</p>")
        client.templates.delete(created.id)
        with pytest.raises(NotFoundError):
            client.templates.get(created.id)


def test_sending_domains(tenant: Tenant, served: set[str]) -> None:
    needs(served, "/v1/domains")
    name = f"mail{uuid.uuid4().hex[:6]}.acme.example"
    with client_for(tenant) as client:
        domain = client.domains.create(domain=name)
        assert (domain.domain, domain.status) == (name, "pending")
        assert {r.purpose for r in domain.dns_records} == {"dkim", "spf", "return_path"}
        dkim = next(r for r in domain.dns_records if r.purpose == "dkim")
        assert dkim.type == "TXT" and "p=" in dkim.value and not dkim.verified
        with pytest.raises(ConflictError):
            client.domains.create(domain=name)
        assert client.domains.get(domain.id).domain == name
        assert domain.id in {d.id for d in client.domains.list_all()}
        client.domains.delete(domain.id)
        with pytest.raises(NotFoundError):
            client.domains.get(domain.id)


def test_webhook_endpoint_management(tenant: Tenant, served: set[str]) -> None:
    needs(served, "/v1/webhook-endpoints/{endpoint_id:str}/rotate-secret")
    with client_for(tenant, tenant.test_key) as client:
        hook = client.webhook_endpoints.create(url="http://127.0.0.1:9/hooks", events=["sms_delivered"],
                                               description="orders")
        assert hook.secret.startswith("whsec_") and hook.mode == "test"
        got = client.webhook_endpoints.get(hook.id)
        assert (got.url, got.events, got.description) == (hook.url, ["sms_delivered"], "orders")

        paused = client.webhook_endpoints.update(hook.id, enabled=False, description="paused")
        assert (paused.enabled, paused.description, paused.events) == (False, "paused", ["sms_delivered"])
        with pytest.raises(ConflictError) as disabled:
            client.webhook_endpoints.test(hook.id)
        assert disabled.value.error == "endpoint_disabled"
        client.webhook_endpoints.update(hook.id, enabled=True)

        rotated = client.webhook_endpoints.rotate_secret(hook.id, overlap_seconds=600)
        assert rotated.secret != hook.secret and rotated.previous_secret_expires_at is not None

        test = client.webhook_endpoints.test(hook.id)
        assert test.event_type == "sms_delivered" and test.webhook_id
        assert client.webhook_endpoints.attempts(hook.id, outcome="failed").pagination.page == 1
        replay = client.webhook_endpoints.replay(hook.id, since=datetime.now(UTC) - timedelta(hours=1))
        assert replay.command_id and replay.since is not None
        with pytest.raises(NotFoundError):
            client.webhook_endpoints.replay(hook.id, webhook_id="msg_unknown")
        assert client.webhook_endpoints.message_attempts(message_id="msg_none").data == []

        client.webhook_endpoints.delete(hook.id)
        with pytest.raises(NotFoundError):
            client.webhook_endpoints.get(hook.id)


async def test_the_whatsapp_line(tenant: Tenant, served: set[str], mongo: AsyncMongoClient[Document],
                                 gateway_db: str) -> None:
    needs(served, "/v1/account/whatsapp-cloud-line")
    number = str(10_000_000 + uuid.uuid4().int % 80_000_000)
    other = await tenancy.create_tenant(mongo[gateway_db], "Other")
    other_key, _ = await tenancy.create_key(mongo[gateway_db], other["_id"], ["members:write"],
                                            mode="live")
    with client_for(tenant) as client, client_for(tenant, other_key) as rival:
        assert client.account.whatsapp_cloud_line.get().uses_platform_default is True
        line = client.account.whatsapp_cloud_line.update(phone_number_id=number,
                                                         access_token="EAAGtoken12345678")
        assert (line.whatsapp_phone_number_id, line.uses_platform_default) == (number, False)
        assert line.access_token_configured and line.access_token_hint == "…5678"
        with pytest.raises(ConflictError) as taken:
            rival.account.whatsapp_cloud_line.update(phone_number_id=number)
        assert taken.value.error == "WHATSAPP_PHONE_NUMBER_ID_IN_USE"
        cleared = client.account.whatsapp_cloud_line.update(phone_number_id=None)
        assert cleared.uses_platform_default is True and cleared.access_token_configured


def test_whatsapp_conversations(tenant: Tenant, served: set[str]) -> None:
    needs(served, "/v1/whatsapp/conversations")
    with client_for(tenant) as client:
        assert client.whatsapp.conversations.list().data == []
        with pytest.raises(NotFoundError):
            client.whatsapp.conversations.get("14155552671")
        sent = client.whatsapp.send(to="+14155552671", text="hello")
        conversation = client.whatsapp.conversations.get("14155552671")
        assert [(m.direction, m.id, m.text) for m in conversation.messages] == [
            ("outbound", sent.id, "hello")]
