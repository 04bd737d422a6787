"""Direct MX delivery through a local DNS server, and the sandbox's feedback for test keys."""

from __future__ import annotations

import json
import time

from postwire_contracts import topology
from postwire_contracts.status import Status
from postwire_platform import signed_tokens
from postwire_testing.dns_server import DnsServer
from postwire_testing.receiver import WebhookReceiver
from postwire_testing.smtp_sink import SmtpSink
from postwire_testing.taps import EventTap

from .email_support import command, make_settings, running


async def test_without_a_relay_mail_goes_to_the_recipients_mx_and_counts_as_delivered(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str) -> None:
    with DnsServer() as dns_server, SmtpSink(starttls=True) as mx:
        dns_server.add("example.net", "MX", "20 backup.example.net.")
        dns_server.add("example.net", "MX", "10 mx1.example.net.")
        dns_server.add("mx1.example.net", "A", "127.0.0.1")
        dns_server.add("backup.example.net", "A", "127.0.0.1")
        settings = make_settings(amqp_url, mongodb_url, db_name, dns_nameservers=dns_server.nameserver,
                                 email_mx_port=mx.port)
        async with running(settings):
            cmd = command("carol@example.net")
            await tap.publisher.publish(cmd, topology.SEND_EMAIL)
            delivered = await tap.wait_for(cmd.message_id, Status.DELIVERED)
            nowhere = command("dave@nowhere.example")
            await tap.publisher.publish(nowhere, topology.SEND_EMAIL)
            failed = await tap.wait_for(nowhere.message_id, Status.FAILED)
    [mail] = mx.messages
    assert mail.rcpt_tos == ["carol@example.net"] and mail.tls  # opportunistic STARTTLS
    assert delivered.detail["host"] == "mx1.example.net" and delivered.detail["transport"] == "mx"
    assert ("mx1.example.net.", "A") in dns_server.queries
    assert failed.event_type == "email_hard_bounce" and failed.detail["enhanced_code"] == "5.1.2"


async def test_test_keys_go_to_the_sandbox_which_posts_signed_feedback(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str) -> None:
    async with WebhookReceiver(path="/feedback") as ingest:
        settings = make_settings(amqp_url, mongodb_url, db_name, email_feedback_url=ingest.url,
                                 email_feedback_secret="fb")
        async with running(settings):
            bounce = command("hardbounce@simulator.postwire.example", live=False)
            fine = command("someone@example.com", live=False)
            for cmd in (bounce, fine):
                await tap.publisher.publish(cmd, topology.SEND_EMAIL)
                await tap.wait_for(cmd.message_id, Status.SENT)
            requests = await ingest.wait_for(lambda reqs: len(reqs) >= 2)
    bodies = {}
    for request in requests:
        signed_tokens.verify_body("fb", request.body, request.headers["x-postwire-signature"],
                                  now=time.time())
        body = json.loads(request.body)
        bodies[body["messageId"]] = body
    assert bodies[bounce.message_id]["type"] == "bounce"
    assert (bodies[bounce.message_id]["bounceType"], bodies[bounce.message_id]["status"]) == (
        "hard", "5.1.1")
    assert bodies[fine.message_id]["type"] == "delivery"
    sent = tap.of(bounce.message_id, Status.SENT)[0]
    assert sent.detail["transport"] == "sandbox"
