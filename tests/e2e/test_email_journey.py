"""Email the whole way, as ``make run`` runs it: SMTP submission or REST → email-dispatcher's sandbox →
provider-ingest (feedback, open pixel) → reporting → the timeline and the suppression list."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import time
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from postwire_testing.system import DevSystem

pytestmark = pytest.mark.e2e

SIM = "simulator.postwire.example"


async def timeline_until(client: httpx.AsyncClient, auth: dict[str, str], message_id: str,
                         wanted: set[str], timeout: float = 60.0) -> list[dict[str, Any]]:
    """Bounded poll of the timeline until it holds every status (or event type) in ``wanted``."""
    deadline = time.monotonic() + timeout
    seen: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        response = await client.get(f"/v1/emails/{message_id}/timeline", headers=auth)
        if response.status_code == 200:
            seen = response.json()["data"]
            have = {e["status"] for e in seen} | {e["eventType"] for e in seen if e["eventType"]}
            if wanted <= have:
                return seen
        await asyncio.sleep(0.2)
    raise AssertionError(f"timeline of {message_id} never held {wanted}: {seen}")


def submit(host_port: str, key: str, to: str) -> None:
    """Submit like an application's mail library (smtplib, STARTTLS, AUTH)."""
    host, port = host_port.rsplit(":", 1)
    message = EmailMessage()
    message["From"] = "Demo <hello@demo.example>"
    message["To"] = to
    message["Subject"] = "Welcome"
    message.set_content("Welcome aboard")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # make run's self-signed certificate
    with smtplib.SMTP(host, int(port), timeout=20) as client:
        client.starttls(context=context)
        client.login("apikey", key)
        refused = client.send_message(message)
    assert refused == {}


async def test_a_message_submitted_over_smtp_reaches_its_timeline(system: DevSystem) -> None:
    info = system.info
    key = info["api_key"]
    auth = {"Authorization": f"Bearer {key}"}
    await asyncio.to_thread(submit, info["smtp"], key, f"delivered@{SIM}")
    async with httpx.AsyncClient(base_url=info["gateway"], timeout=10) as client:
        listed = (await client.get("/v1/emails", headers=auth,
                                   params={"query": f"delivered@{SIM}"})).json()["data"]
        submitted = [m for m in listed if m["submittedVia"] == "smtp"]
        assert submitted, listed
        timeline = await timeline_until(client, auth, submitted[0]["id"],
                                        {"QUEUED", "PROCESSING", "SENT", "DELIVERED"})
    sources = {e["status"]: e["source"] for e in timeline}
    assert sources["QUEUED"] == "gateway" and sources["SENT"] == "email-dispatcher"
    assert sources["DELIVERED"] == "mta-feedback"


async def test_simulated_hard_bounce_suppresses_and_an_open_is_recorded(system: DevSystem) -> None:
    info = system.info
    auth = {"Authorization": f"Bearer {info['api_key']}"}
    body = {"from": "hello@demo.example", "subject": "Hi {{ x }}", "html": "<p>Hi</p>"}
    async with httpx.AsyncClient(base_url=info["gateway"], timeout=10) as client:
        bounce = await client.post("/v1/emails/send", headers=auth, json={
            **body, "to": [f"hardbounce@{SIM}"]})
        assert bounce.status_code == 201, bounce.text
        bounced = await timeline_until(client, auth, bounce.json()["data"]["id"],
                                       {"FAILED", "email_hard_bounce"})
        assert any(e["eventType"] == "email_hard_bounce" for e in bounced)
        suppressions = (await client.get("/v1/suppressions", headers=auth)).json()["data"]
        assert f"hardbounce@{SIM}" in [s["email"] for s in suppressions]
        again = await client.post("/v1/emails/send", headers=auth, json={
            **body, "to": [f"hardbounce@{SIM}"]})
        skipped = await timeline_until(client, auth, again.json()["data"]["id"], {"FAILED"})
        assert [e["errorCode"] for e in skipped if e["status"] == "FAILED"] == ["suppressed"]

        opened = await client.post("/v1/emails/send", headers=auth, json={**body, "to": [f"open@{SIM}"]})
        timeline = await timeline_until(client, auth, opened.json()["data"]["id"],
                                        {"DELIVERED", "READ", "email_opened"})
        assert [e["source"] for e in timeline if e["eventType"] == "email_opened"] == ["email-tracking"]
        message = (await client.get(f"/v1/emails/{opened.json()['data']['id']}", headers=auth)).json()
        assert message["data"]["status"] == "READ" and message["data"]["readAt"]
