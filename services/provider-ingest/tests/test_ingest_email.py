"""Email feedback (signed JSON, RFC 3464 DSNs, ARF complaints), the open pixel and the click redirect."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts.status import Status
from postwire_platform import signed_tokens
from postwire_platform.clock import utcnow
from postwire_platform.ids import new_id
from postwire_platform.mongo import MESSAGES, SUPPRESSIONS, Document
from postwire_provider_ingest.app import create_app
from postwire_provider_ingest.settings import ProviderIngestSettings
from postwire_testing.taps import EventTap, event_tap

FEEDBACK = "/v1/webhooks/email/feedback"
SECRET = "fb-secret"
TRACKING = "trk-secret"


@pytest.fixture
async def tap(amqp_url: str) -> AsyncIterator[EventTap]:
    async with event_tap(amqp_url) as t:
        yield t


@pytest.fixture
async def client(amqp_url: str, mongodb_url: str, db_name: str,
                 db: AsyncDatabase[Document]) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = ProviderIngestSettings(amqp_url=amqp_url, mongodb_url=mongodb_url,
                                      mongodb_database=db_name, shutdown_timeout=5.0,
                                      email_feedback_secret=SECRET, email_tracking_secret=TRACKING)
    async with AsyncTestClient(create_app(settings)) as c:
        yield c


async def stored_email(db: AsyncDatabase[Document], to: str) -> str:
    mid = new_id()
    await db[MESSAGES].insert_one({"_id": mid, "tenant_id": "ten_1", "channel": "email", "to": to,
                                   "status": "SENT", "accepted_at": utcnow()})
    return mid


def signed(body: bytes, *, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    return {signed_tokens.SIGNATURE_HEADER: signed_tokens.sign_body(secret, body,
                                                                    int(at or time.time()))}


def dsn(message_id: str, recipient: str, action: str, status: str, diagnostic: str) -> bytes:
    return f"""From: MAILER-DAEMON@mx.example.net
To: pwb-x@pwbounces.shop.example
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

This is the mail system at host mx.example.net.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Arrival-Date: Sat, 21 Nov 2026 12:00:00 +0000

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {diagnostic}
Last-Attempt-Date: Sat, 21 Nov 2026 12:00:05 +0000

--B
Content-Type: text/rfc822-headers

From: Shop <receipts@shop.example>
To: {recipient}
Subject: Your receipt
Message-ID: <{message_id.lower()}@shop.example>
X-Postwire-Message-ID: {message_id}

--B--
""".replace("\n", "\r\n").encode()


async def test_unsigned_or_stale_feedback_is_refused_and_publishes_nothing(
        client: AsyncTestClient[Any], tap: EventTap) -> None:
    body = b'{"type":"bounce","bounceType":"hard","messageId":"m1","recipient":"a@example.com"}'
    for headers in ({}, signed(body, secret="wrong"), signed(body, at=time.time() - 3600)):
        refused = await client.post(FEEDBACK, content=body, headers=headers)
        assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    bad = b'{"type":"bounce","messageId":"m1"}'
    invalid = await client.post(FEEDBACK, content=bad, headers=signed(bad))
    assert (invalid.status_code, invalid.json()["error"]) == (422, "invalid_feedback")
    assert tap.events == []


async def test_a_dsn_hard_bounce_fails_the_message_and_suppresses_the_address(
        client: AsyncTestClient[Any], tap: EventTap, db: AsyncDatabase[Document]) -> None:
    mid = await stored_email(db, "gone@example.net")
    body = dsn(mid, "gone@example.net", "failed", "5.1.1", "550 5.1.1 <gone@example.net>: no such user")
    response = await client.post(FEEDBACK, content=body,
                                 headers={**signed(body), "Content-Type": "message/rfc822"})
    assert response.status_code == 200, response.text
    event = await tap.wait_for(mid, Status.FAILED)
    assert (event.event_type, event.error_code, event.detail["status"]) == (
        "email_hard_bounce", "hard_bounce", "5.1.1")
    assert event.provider_message_id == f"{mid.lower()}@shop.example"
    assert event.detail["recipient"] == "gone@example.net" and event.source == "mta-feedback"
    entry = await db[SUPPRESSIONS].find_one({"tenant_id": "ten_1", "email": "gone@example.net"})
    assert entry is not None and entry["reason"] == "hard_bounce" and entry["message_id"] == mid
    again = await client.post(FEEDBACK, content=body, headers=signed(body))
    assert again.status_code == 200
    await tap.wait_for(mid, Status.FAILED, count=2)
    assert len({e.event_id for e in tap.of(mid)}) == 1  # a repeated DSN is the same event


async def test_policy_blocks_delays_and_json_soft_bounces_do_not_suppress(
        client: AsyncTestClient[Any], tap: EventTap, db: AsyncDatabase[Document]) -> None:
    blocked = await stored_email(db, "ceo@example.net")
    body = dsn(blocked, "ceo@example.net", "failed", "5.7.1", "550 5.7.1 rejected by policy")
    assert (await client.post(FEEDBACK, content=body, headers=signed(body))).status_code == 200
    assert (await tap.wait_for(blocked, Status.FAILED)).event_type == "email_hard_bounce"
    delayed = await stored_email(db, "slow@example.net")
    body = dsn(delayed, "slow@example.net", "delayed", "4.4.7", "451 4.4.7 try later")
    assert (await client.post(FEEDBACK, content=body, headers=signed(body))).status_code == 200
    note = await tap.wait_for(delayed, Status.SENT)
    assert note.provider_status == "4.4.7" and note.event_type is None
    soft = await stored_email(db, "full@example.net")
    body = (b'{"type":"bounce","bounceType":"soft","messageId":"' + soft.encode()
            + b'","recipient":"full@example.net","status":"4.2.2","diagnostic":"mailbox full"}')
    assert (await client.post(FEEDBACK, content=body, headers=signed(body))).status_code == 200
    assert (await tap.wait_for(soft, Status.FAILED)).event_type == "email_soft_bounce"
    assert await db[SUPPRESSIONS].count_documents({}) == 0


async def test_a_complaint_suppresses_with_its_own_event_type(
        client: AsyncTestClient[Any], tap: EventTap, db: AsyncDatabase[Document]) -> None:
    mid = await stored_email(db, "angry@example.net")
    body = (b'{"type":"complaint","messageId":"' + mid.encode()
            + b'","recipient":"Angry@example.net","feedbackId":"fbl-1"}')
    assert (await client.post(FEEDBACK, content=body, headers=signed(body))).status_code == 200
    event = await tap.wait_for(mid, Status.DELIVERED)
    assert event.event_type == "email_spam_complaint"
    entry = await db[SUPPRESSIONS].find_one({"email": "angry@example.net"})
    assert entry is not None and entry["reason"] == "spam_complaint"


async def test_the_pixel_and_the_click_record_once_and_redirect_only_where_signed(
        client: AsyncTestClient[Any], tap: EventTap) -> None:
    open_token = signed_tokens.sign(TRACKING, {"k": "o", "m": "m-open"})
    for _ in range(2):
        pixel = await client.get(f"/v1/track/open/{open_token}.gif")
        assert pixel.status_code == 200 and pixel.headers["content-type"] == "image/gif"
        assert pixel.content.startswith(b"GIF89a")
    opened = await tap.wait_for("m-open", Status.READ, count=2)
    assert opened.event_type == "email_opened" and opened.event_id == "m-open:opened"

    target = "https://shop.example/orders/42?x=1"
    click_token = signed_tokens.sign(TRACKING, {"k": "c", "m": "m-open", "u": target})
    click = await client.get(f"/v1/track/click/{click_token}", follow_redirects=False)
    assert click.status_code == 302 and click.headers["location"] == target
    clicked = await tap.wait_for("m-open", Status.READ, count=3)
    assert clicked.event_type == "email_clicked" and clicked.detail["url"] == target

    forged = signed_tokens.sign("not-the-secret", {"k": "c", "m": "m-open", "u": "https://evil.example"})
    for bad in (f"/v1/track/click/{forged}", f"/v1/track/click/{open_token}",
                f"/v1/track/open/{click_token}.gif", "/v1/track/click/garbage"):
        refused = await client.get(bad, follow_redirects=False)
        assert refused.status_code == 403 and "location" not in refused.headers
    javascript = signed_tokens.sign(TRACKING, {"k": "c", "m": "m-open", "u": "javascript:alert(1)"})
    assert (await client.get(f"/v1/track/click/{javascript}")).status_code == 403
    assert len(tap.of("m-open")) == 3
