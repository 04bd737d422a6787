"""SMTP submission on a real port with STARTTLS and AUTH: the same pipeline as the REST send."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_gateway.settings import GatewaySettings
from postwire_gateway.smtp_main import SmtpSettings, create_app
from postwire_platform import tenancy
from postwire_platform.clock import utcnow
from postwire_platform.mongo import SUPPRESSIONS, Document
from postwire_testing.servers import free_port

from .gateway_support import Tenant

Client = AsyncTestClient[Any]


@pytest.fixture
async def smtp_port(settings: GatewaySettings) -> AsyncIterator[int]:
    """The submission listener (its own app, as ``postwire-smtp`` runs it) on a free port."""
    port = free_port()
    smtp_settings = SmtpSettings(**{**msgspec.structs.asdict(settings), "smtp_port": port,
                                    "service_name": "smtp", "smtp_max_message_bytes": 64_000})
    async with AsyncTestClient(create_app(smtp_settings)) as listener:
        assert (await listener.get("/readyz")).status_code == 200
        yield port


def _tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the listener's self-signed development certificate
    return context


def _message(to: str, *, bcc: str | None = None, body_size: int = 0) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Shop <shop@example.org>"
    message["To"] = to
    message["Subject"] = "Your order"
    message["Message-ID"] = "<order-42@app.example.org>"
    message["X-Postwire-Metadata-order"] = "42"
    message["X-Postwire-Track-Clicks"] = "false"
    message.set_content("Thanks for your order" + "x" * body_size)
    message.add_alternative("<html><head><style>p{color:red}</style></head><body><p>Thanks</p></body></html>",
                            subtype="html")
    if bcc:
        message["Bcc"] = bcc
    return message


def _submit(port: int, key: str, message: EmailMessage, *, starttls: bool = True) -> dict[str, Any]:
    """What an application's mail library does (smtplib), returning what the server said."""
    with smtplib.SMTP("127.0.0.1", port, timeout=15) as client:
        client.ehlo()
        if starttls:
            client.starttls(context=_tls())
        client.login("apikey", key)
        refused = client.send_message(message)
        code, _ = client.noop()
        return {"refused": refused, "noop": code}


async def test_a_submitted_message_is_accepted_like_a_rest_send_and_readable(
        client: Client, tenant: Tenant, db: AsyncDatabase[Document], smtp_port: int) -> None:
    key, _ = await tenancy.create_key(db, tenant.id, ["send:email", "read:email"], mode="test")
    await db[SUPPRESSIONS].insert_one({"_id": "sup_1", "tenant_id": tenant.id,
                                       "email": "gone@example.com", "reason": "hard_bounce",
                                       "created_at": utcnow()})
    result = await asyncio.to_thread(_submit, smtp_port, key,
                                     _message("ada@example.com, gone@example.com",
                                              bcc="audit@example.org"))
    assert result["refused"]["gone@example.com"][0] == 550
    assert b"suppression list" in result["refused"]["gone@example.com"][1]

    auth = {"Authorization": f"Bearer {key}"}
    listed = (await client.get("/v1/emails", headers=auth)).json()["data"]
    assert sorted((m["to"], m["recipientType"]) for m in listed) == [
        ("ada@example.com", "to"), ("audit@example.org", "bcc")]
    ada = next(m for m in listed if m["to"] == "ada@example.com")
    assert (ada["from"], ada["subject"], ada["submittedVia"], ada["externalId"], ada["metadata"],
            ada["trackClicks"], ada["trackOpens"]) == (
        "Shop <shop@example.org>", "Your order", "smtp", "order-42@app.example.org", {"order": "42"},
        False, True)
    timeline = await client.get(f"/v1/emails/{ada['id']}/timeline", headers=auth)
    assert timeline.status_code == 200
    assert [(e["status"], e["source"]) for e in timeline.json()["data"]] == [("QUEUED", "gateway")]
    stored = await db["messages"].find_one({"_id": ada["id"]})
    assert stored is not None
    assert 'style="color: red;"' in stored["command"]["html"]
    assert stored["command"]["display_to"] == ["ada@example.com"]


async def test_bad_keys_plain_text_auth_and_oversized_messages_get_clear_smtp_errors(
        tenant: Tenant, db: AsyncDatabase[Document], smtp_port: int) -> None:
    sms_only, _ = await tenancy.create_key(db, tenant.id, ["send:sms"], mode="test")
    live, _ = await tenancy.create_key(db, tenant.id, ["send:email"], mode="live")
    message = _message("ada@example.com")
    with pytest.raises(smtplib.SMTPAuthenticationError) as bad_key:
        await asyncio.to_thread(_submit, smtp_port, "pw_test_nonsense", message)
    assert bad_key.value.smtp_code == 535
    with pytest.raises(smtplib.SMTPAuthenticationError) as no_scope:
        await asyncio.to_thread(_submit, smtp_port, sms_only, message)
    assert b"send:email" in no_scope.value.smtp_error
    with pytest.raises(smtplib.SMTPException):  # AUTH is refused before STARTTLS
        await asyncio.to_thread(_submit, smtp_port, live, message, starttls=False)
    with pytest.raises(smtplib.SMTPSenderRefused) as unverified:
        await asyncio.to_thread(_submit, smtp_port, live, message)
    assert unverified.value.smtp_code == 553 and b"not a verified" in unverified.value.smtp_error
    test_key, _ = await tenancy.create_key(db, tenant.id, ["send:email"], mode="test")
    with pytest.raises(smtplib.SMTPException) as too_big:
        await asyncio.to_thread(_submit, smtp_port, test_key,
                                _message("ada@example.com", body_size=80_000))
    assert "552" in str(too_big.value)
    assert await db["messages"].count_documents({}) == 0
