"""email-dispatcher against real RabbitMQ, SecantusDB and a real aiosmtpd relay on loopback."""

from __future__ import annotations

import email.policy
from datetime import timedelta
from email.message import EmailMessage

import dkim
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts import topology
from postwire_contracts.status import Status
from postwire_platform import signed_tokens
from postwire_platform.clock import utcnow
from postwire_platform.mongo import EMAIL_DISPATCHES, SUPPRESSIONS, Document
from postwire_testing.smtp_sink import SmtpSink
from postwire_testing.taps import EventTap

from .email_support import command, relay_settings, running, verified_domain


def _body(parsed: EmailMessage, subtype: str) -> str:
    part = parsed.get_body(preferencelist=(subtype,))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


async def test_a_live_email_reaches_the_relay_dkim_signed_with_tracking(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str,
        db: AsyncDatabase[Document]) -> None:
    domain = await verified_domain(db)
    with SmtpSink(starttls=True, username="relay", password="s3cret") as sink:
        settings = relay_settings(amqp_url, mongodb_url, db_name, sink.port,
                                  email_relay_tls="starttls", email_relay_verify_tls=False,
                                  email_relay_username="relay", email_relay_password="s3cret",
                                  email_tracking_secret="trk")
        async with running(settings):
            cmd = command(track_opens=True, track_clicks=True, display_to=["ada@example.com"],
                          headers={"X-Campaign": "receipts"}, reply_to="help@shop.example")
            await tap.publisher.publish(cmd, topology.SEND_EMAIL)
            sent = await tap.wait_for(cmd.message_id, Status.SENT)

    [mail] = sink.messages
    assert mail.tls and mail.auth_user == "relay"
    assert mail.rcpt_tos == ["ada@example.com"]
    assert mail.mail_from == f"pwb-{cmd.message_id.lower()}@pwbounces.shop.example"
    assert dkim.verify(mail.data, dnsfunc=lambda name, timeout=5: domain.dns_txt
                       if name == b"pw1._domainkey.shop.example." else None)
    parsed = mail.parsed()
    assert parsed["DKIM-Signature"] is not None and "d=shop.example" in parsed["DKIM-Signature"]
    assert (parsed["From"], parsed["To"], parsed["Subject"], parsed["Reply-To"],
            parsed["X-Campaign"]) == ("Shop <receipts@shop.example>", "ada@example.com",
                                      "Your receipt", "help@shop.example", "receipts")
    assert parsed["X-Postwire-Message-ID"] == cmd.message_id
    assert sent.provider_message_id == parsed["Message-ID"].strip("<>")
    assert sent.detail["smtp_code"] == 250 and sent.detail["transport"] == "relay"
    html = _body(parsed, "html")
    assert '<p style="color: red;">Thanks, Ada</p>' in html
    assert "https://shop.example/orders/42" not in html  # rewritten through the click redirect
    click = html.split('href="', 1)[1].split('"', 1)[0]
    token = click.rsplit("/", 1)[1]
    assert signed_tokens.verify("trk", token) == {
        "k": "c", "m": cmd.message_id, "u": "https://shop.example/orders/42?x=1&y=2"}
    assert "/v1/track/open/" in html
    assert _body(parsed, "plain").strip() == "Thanks, Ada"
    assert [e.status for e in tap.of(cmd.message_id)] == [Status.PROCESSING, Status.SENT]


async def test_550_5_1_1_hard_bounces_suppresses_and_the_next_send_skips_smtp(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str,
        db: AsyncDatabase[Document]) -> None:
    with SmtpSink() as sink:
        sink.reject("gone@example.com", "550 5.1.1 <gone@example.com>: no such user")
        async with running(relay_settings(amqp_url, mongodb_url, db_name, sink.port)):
            first = command("gone@example.com")
            await tap.publisher.publish(first, topology.SEND_EMAIL)
            failed = await tap.wait_for(first.message_id, Status.FAILED)
            assert (failed.event_type, failed.error_code) == ("email_hard_bounce", "hard_bounce")
            assert failed.detail["enhanced_code"] == "5.1.1" and failed.detail["suppressed"]
            assert "5.1.1" in (failed.error_reason or "")
            entry = await db[SUPPRESSIONS].find_one({"tenant_id": "ten_test",
                                                      "email": "gone@example.com"})
            assert entry is not None and entry["reason"] == "hard_bounce"
            assert entry["message_id"] == first.message_id

            second = command("Gone@Example.com")
            await tap.publisher.publish(second, topology.SEND_EMAIL)
            skipped = await tap.wait_for(second.message_id, Status.FAILED)
    assert skipped.error_code == "suppressed" and skipped.event_type is None
    assert "hard_bounce" in (skipped.error_reason or "")
    assert sink.rcpt_attempts == ["gone@example.com"]  # the second send never reached SMTP
    assert sink.messages == []


async def test_a_policy_block_hard_bounces_without_suppressing(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str,
        db: AsyncDatabase[Document]) -> None:
    with SmtpSink() as sink:
        sink.fail_next(1, "550 5.7.1 message refused by policy", stage="data")
        async with running(relay_settings(amqp_url, mongodb_url, db_name, sink.port)):
            cmd = command("bob@example.com")
            await tap.publisher.publish(cmd, topology.SEND_EMAIL)
            failed = await tap.wait_for(cmd.message_id, Status.FAILED)
    assert failed.event_type == "email_hard_bounce" and failed.detail["enhanced_code"] == "5.7.1"
    assert await db[SUPPRESSIONS].count_documents({}) == 0


async def test_421_is_retried_through_the_delay_queue_then_delivered_once(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str,
        db: AsyncDatabase[Document]) -> None:
    with SmtpSink() as sink:
        sink.fail_next(2, "421 4.3.2 service not available, try later", stage="mail")
        async with running(relay_settings(amqp_url, mongodb_url, db_name, sink.port)):
            cmd = command()
            await tap.publisher.publish(cmd, topology.SEND_EMAIL)
            sent = await tap.wait_for(cmd.message_id, Status.SENT)
    deferred = [e for e in tap.of(cmd.message_id, Status.PROCESSING) if e.provider_status]
    assert [(e.event_id, e.detail["smtp_code"]) for e in deferred] == [
        (f"{cmd.message_id}:deferred:1", 421), (f"{cmd.message_id}:deferred:2", 421)]
    assert len(sink.messages_to("ada@example.com")) == 1
    assert sent.event_type is None
    claim = await db[EMAIL_DISPATCHES].find_one({"_id": cmd.message_id})
    assert claim is not None and claim["attempts"] == 3 and claim["state"] == "sent"


async def test_a_deferral_that_lasts_becomes_a_soft_bounce(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str) -> None:
    with SmtpSink() as sink:
        sink.reject("full@example.com", "452 4.2.2 mailbox full")
        async with running(relay_settings(amqp_url, mongodb_url, db_name, sink.port)):
            cmd = command("full@example.com")
            await tap.publisher.publish(cmd, topology.SEND_EMAIL)
            failed = await tap.wait_for(cmd.message_id, Status.FAILED)
    assert (failed.event_type, failed.error_code) == ("email_soft_bounce", "soft_bounce")
    assert "after 3 attempts" in (failed.error_reason or "")
    assert sink.rcpt_attempts == ["full@example.com"] * 3


async def test_duplicate_deliveries_never_send_twice_and_the_pool_reuses_its_connection(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str) -> None:
    with SmtpSink() as sink:
        async with running(relay_settings(amqp_url, mongodb_url, db_name, sink.port)):
            cmd = command()
            for count in (1, 2, 3):
                await tap.publisher.publish(cmd, topology.SEND_EMAIL)
                await tap.wait_for(cmd.message_id, Status.SENT, count=count)
            for _ in range(3):
                other = command("eve@example.com")
                await tap.publisher.publish(other, topology.SEND_EMAIL)
                await tap.wait_for(other.message_id, Status.SENT)
    assert len(sink.messages_to("ada@example.com")) == 1
    assert {e.event_id for e in tap.of(cmd.message_id, Status.SENT)} == {f"{cmd.message_id}:sent"}
    assert len(sink.messages) == 4 and sink.connections_used() == 1


async def test_without_a_verified_domain_a_message_goes_unsigned_from_the_from_address(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str) -> None:
    with SmtpSink() as sink:
        async with running(relay_settings(amqp_url, mongodb_url, db_name, sink.port)):
            cmd = command(html=None, text="plain only")
            await tap.publisher.publish(cmd, topology.SEND_EMAIL)
            await tap.wait_for(cmd.message_id, Status.SENT)
    [mail] = sink.messages
    parsed = mail.parsed()
    assert mail.mail_from == "receipts@shop.example" and parsed["DKIM-Signature"] is None
    assert parsed.get_content_type() == "text/plain"
    assert email.policy.default  # the parsed message used the modern policy


async def test_a_claim_whose_dead_owner_had_begun_data_is_not_sent_again(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str,
        db: AsyncDatabase[Document]) -> None:
    # what a dispatcher killed between DATA and recording the answer leaves behind
    cmd = command()
    then = utcnow() - timedelta(seconds=30)
    await db[EMAIL_DISPATCHES].insert_one({
        "_id": cmd.message_id, "state": "processing", "owner": "killed-worker",
        "lease_until": then, "attempts": 1, "created_at": then, "updated_at": then,
        "data_at": then})
    with SmtpSink() as sink:
        async with running(relay_settings(amqp_url, mongodb_url, db_name, sink.port)):
            await tap.publisher.publish(cmd, topology.SEND_EMAIL)
            failed = await tap.wait_for(cmd.message_id, Status.FAILED)
    assert failed.error_code == "outcome_unknown"
    assert "may have been delivered" in (failed.error_reason or "")
    assert sink.messages == [] and sink.rcpt_attempts == []


async def test_data_is_marked_before_it_is_sent_and_a_deferral_clears_the_mark(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str,
        db: AsyncDatabase[Document]) -> None:
    with SmtpSink() as sink:
        sink.fail_next(1, "451 4.3.0 try again later", stage="data")
        async with running(relay_settings(amqp_url, mongodb_url, db_name, sink.port)):
            cmd = command()
            await tap.publisher.publish(cmd, topology.SEND_EMAIL)
            await tap.wait_for(cmd.message_id, Status.SENT)
    # the refused DATA was an attempt with a known outcome, so the retry went out (once)
    assert len(sink.messages_to("ada@example.com")) == 1
    claim = await db[EMAIL_DISPATCHES].find_one({"_id": cmd.message_id})
    assert claim is not None and claim["attempts"] == 2 and claim["state"] == "sent"
    assert claim["data_at"] <= claim["finished_at"]
