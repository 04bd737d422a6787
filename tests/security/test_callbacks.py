"""The callback endpoints that carriers, MTAs and Meta call, fuzzed: mutated tokens, signatures,
timestamps and bodies are refused (401/403 in the error format, never a 5xx) and nothing is published;
signed callbacks outside their replay window are refused too; the genuine article is accepted.

provider-ingest runs for real (uvicorn, RabbitMQ on a vhost of this module, SecantusDB); a queue bound
to every routing key of the exchange sees anything it would publish. Signatures are computed here from
the protocol descriptions (not with the service's own helpers), as a provider would.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator

import aio_pika
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postwire_platform import signed_tokens
from postwire_provider_ingest.app import create_app
from postwire_provider_ingest.settings import ProviderIngestSettings
from postwire_testing.servers import ThreadedServer

DLR_TOKEN = "dlr-" + uuid.uuid4().hex
INBOUND_TOKEN = "mo-" + uuid.uuid4().hex
PROVIDER_SECRET = "prov-" + uuid.uuid4().hex
FEEDBACK_SECRET = "fb-" + uuid.uuid4().hex
TRACKING_SECRET = "trk-" + uuid.uuid4().hex
VERIFY_TOKEN = "vt-" + uuid.uuid4().hex
APP_SECRET = uuid.uuid4().hex
TAP = "security-callbacks-tap"
EXAMPLES = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))


class Ingest:
    """The running provider-ingest and the tap on its exchange."""

    def __init__(self, url: str, amqp_url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=30)
        self.amqp_url = amqp_url

    def published(self) -> list[tuple[str, bytes]]:
        """Take every message the tap caught so far: (routing key, body)."""
        async def drain() -> list[tuple[str, bytes]]:
            connection = await aio_pika.connect(self.amqp_url, timeout=10)
            try:
                channel = await connection.channel()
                queue = await channel.declare_queue(TAP, passive=True)
                out = []
                while (message := await queue.get(no_ack=True, fail=False)) is not None:
                    out.append((str(message.routing_key), message.body))
                return out
            finally:
                await connection.close()
        return asyncio.run(drain())


@pytest.fixture(scope="module")
def ingest(amqp_url: str, mongodb_url: str) -> Iterator[Ingest]:
    db_name = f"pwsec_{uuid.uuid4().hex[:10]}"
    app = create_app(ProviderIngestSettings(
        amqp_url=amqp_url, mongodb_url=mongodb_url, mongodb_database=db_name, log_level="WARNING",
        shutdown_timeout=5.0, sms_dlr_token=DLR_TOKEN, sms_inbound_token=INBOUND_TOKEN,
        sms_provider_secret=PROVIDER_SECRET, email_feedback_secret=FEEDBACK_SECRET,
        email_tracking_secret=TRACKING_SECRET, whatsapp_verify_token=VERIFY_TOKEN,
        whatsapp_app_secret=APP_SECRET, whatsapp_default_tenant_id="ten_security"))
    server = ThreadedServer(app)
    server.start()

    async def bind() -> None:
        connection = await aio_pika.connect(amqp_url, timeout=10)
        channel = await connection.channel()
        queue = await channel.declare_queue(TAP, durable=False)
        await queue.bind("postwire", routing_key="#")
        await connection.close()

    asyncio.run(bind())
    ingest = Ingest(server.url, amqp_url)
    try:
        yield ingest
    finally:
        ingest.client.close()
        server.stop()


# --- what genuine callers send ------------------------------------------------------------------------
def provider_signature(secret: str, timestamp: int, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def meta_signature(body: bytes) -> str:
    return "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()


def feedback_signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


DLR_BODY = json.dumps({"id": "carrier-1", "stat": "DELIVRD", "err": "000"}).encode()
INBOUND_BODY = json.dumps({"from": "+447911123456", "to": "Postwire", "text": "STOP",
                           "id": "mo-1"}).encode()
WA_BODY = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
    "field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "statuses": [{"id": "wamid.security", "status": "delivered", "timestamp": "1749416383",
                      "recipient_id": "447911123456"}]}}]}]}).encode()
FEEDBACK_BODY = json.dumps({"type": "bounce", "providerMessageId": "<x@shop.example>",
                            "recipient": "ada@example.com", "bounceType": "hard",
                            "status": "5.1.1", "feedbackId": "fb-1"}).encode()


PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
"""What an HTTP header or a query value can carry."""


def mutants(valid: str) -> st.SearchStrategy[str]:
    """Strings near ``valid`` (one character changed, cut, extended, case-swapped) or anything."""
    def change(data: tuple[int, str]) -> str:
        i, c = data
        i %= max(1, len(valid))
        return valid[:i] + c + valid[i + 1:]
    near = st.one_of(
        st.tuples(st.integers(0, 1000), PRINTABLE)
        .map(change),
        st.integers(0, max(0, len(valid) - 1)).map(lambda n: valid[:n]),
        st.text(PRINTABLE, min_size=1,
                max_size=8).map(lambda s: valid + s),
        st.just(valid.swapcase()),
        st.text(PRINTABLE, max_size=120),
    )
    return near.filter(lambda s: s != valid and s == s.strip())  # h11 refuses padded header values


def tampered(body: bytes) -> st.SearchStrategy[bytes]:
    """``body`` with one byte changed, cut short or extended."""
    def flip(data: tuple[int, int]) -> bytes:
        i, b = data
        i %= len(body)
        return body[:i] + bytes([b]) + body[i + 1:]
    return st.one_of(st.tuples(st.integers(0, 10_000), st.integers(0, 255)).map(flip),
                     st.integers(0, len(body) - 1).map(lambda n: body[:n]),
                     st.binary(min_size=1, max_size=16).map(lambda extra: body + extra)
                     ).filter(lambda b: b != body)


def refused(r: httpx.Response, *statuses: int) -> None:
    assert r.status_code in statuses, (r.status_code, r.text)
    payload = r.json()
    assert payload["success"] is False and payload["code"] == r.status_code and payload["error"]


# --- forgeries ---------------------------------------------------------------------------------------
@EXAMPLES
@given(token=mutants(DLR_TOKEN))
def test_sms_receipts_with_a_wrong_token_are_refused(ingest: Ingest, token: str) -> None:
    r = ingest.client.post("/v1/webhooks/sms/dlr", params={"token": token}, content=DLR_BODY)
    refused(r, 401)
    assert ingest.published() == []


@EXAMPLES
@given(token=mutants(INBOUND_TOKEN))
def test_inbound_sms_with_a_wrong_token_are_refused(ingest: Ingest, token: str) -> None:
    r = ingest.client.post("/v1/webhooks/sms/inbound-opt-out", params={"token": token},
                           content=INBOUND_BODY)
    refused(r, 401)
    assert ingest.published() == []


@EXAMPLES
@given(data=st.data(), body=st.one_of(st.just(DLR_BODY), tampered(DLR_BODY)))
def test_signed_provider_status_with_a_forged_signature_is_refused(
        ingest: Ingest, data: st.DataObject, body: bytes) -> None:
    now = int(time.time())
    genuine = provider_signature(PROVIDER_SECRET, now, DLR_BODY)  # over the original body
    # several space-separated values are allowed (rotation): one genuine among them is genuine
    forged = data.draw(mutants(genuine).filter(lambda s: genuine not in s.split()))
    for header in (forged, genuine) if body != DLR_BODY else (forged,):
        r = ingest.client.post("/v1/webhooks/sms/provider", content=body, headers={
            "X-Postwire-Timestamp": str(now), "X-Postwire-Signature": header})
        refused(r, 401, 403)
    assert ingest.published() == []


@EXAMPLES
@given(skew=st.one_of(st.integers(301, 10**8), st.integers(-10**8, -301)))
def test_signed_provider_status_outside_its_replay_window_is_refused(ingest: Ingest,
                                                                     skew: int) -> None:
    sent = int(time.time()) - skew  # correctly signed, but too old (or from the future)
    r = ingest.client.post("/v1/webhooks/sms/provider", content=DLR_BODY, headers={
        "X-Postwire-Timestamp": str(sent),
        "X-Postwire-Signature": provider_signature(PROVIDER_SECRET, sent, DLR_BODY)})
    refused(r, 403)
    assert ingest.published() == []


@EXAMPLES
@given(signature=mutants(meta_signature(WA_BODY)).filter(
           lambda s: s.strip().lower() != meta_signature(WA_BODY)),  # hex is hex in either case
       body=st.one_of(st.just(WA_BODY), tampered(WA_BODY)))
def test_whatsapp_notifications_with_a_forged_signature_are_refused(
        ingest: Ingest, signature: str, body: bytes) -> None:
    genuine = meta_signature(WA_BODY)  # over the original body
    for header in (signature, genuine) if body != WA_BODY else (signature,):
        r = ingest.client.post("/v1/webhooks/whatsapp", content=body,
                               headers={"X-Hub-Signature-256": header})
        refused(r, 401)
    assert ingest.published() == []


@EXAMPLES
@given(token=mutants(VERIFY_TOKEN))
def test_whatsapp_handshake_with_a_wrong_verify_token_is_refused(ingest: Ingest, token: str) -> None:
    r = ingest.client.get("/v1/webhooks/whatsapp", params={
        "hub.mode": "subscribe", "hub.challenge": "8675309", "hub.verify_token": token})
    refused(r, 403)
    assert "8675309" not in r.text


def _carries(header: str, genuine: str) -> bool:
    """True when ``header`` holds the genuine timestamp and one genuine ``v1`` value."""
    items = {tuple(i.strip().split("=", 1)) for i in header.split(",") if "=" in i}
    return all(tuple(i.split("=", 1)) in items for i in genuine.split(","))


@EXAMPLES
@given(data=st.data(), body=st.one_of(st.just(FEEDBACK_BODY), tampered(FEEDBACK_BODY)),
       skew=st.one_of(st.integers(301, 10**8), st.integers(-10**8, -301)))
def test_mta_feedback_forged_tampered_or_stale_is_refused(ingest: Ingest, data: st.DataObject,
                                                          body: bytes, skew: int) -> None:
    now = int(time.time())
    genuine = feedback_signature(FEEDBACK_SECRET, now, FEEDBACK_BODY)
    forged = data.draw(mutants(genuine).filter(lambda s: not _carries(s, genuine)))
    stale = feedback_signature(FEEDBACK_SECRET, now - skew, body)  # correctly signed, too old
    headers = [forged, stale] + ([genuine] if body != FEEDBACK_BODY else [])
    for header in headers:
        r = ingest.client.post("/v1/webhooks/email/feedback", content=body,
                               headers={"X-Postwire-Signature": header})
        refused(r, 401)
    assert ingest.published() == []


OPEN = signed_tokens.sign(TRACKING_SECRET, {"k": "o", "m": "01HSECURITYOPEN0000000000"})
CLICK = signed_tokens.sign(TRACKING_SECRET, {"k": "c", "m": "01HSECURITYCLICK000000000",
                                             "u": "https://shop.example/orders"})


def _forged_click() -> st.SearchStrategy[str]:
    _, _, signature = CLICK.partition(".")
    evil = base64.urlsafe_b64encode(json.dumps(
        {"k": "c", "m": "01HSECURITYCLICK000000000", "u": "https://evil.example/"}).encode()
    ).rstrip(b"=").decode()
    return st.one_of(mutants(CLICK), st.just(f"{evil}.{signature}"))


@EXAMPLES
@given(open_token=mutants(OPEN).filter(lambda t: "/" not in t and "?" not in t and "#" not in t),
       click_token=_forged_click().filter(lambda t: "/" not in t and "?" not in t and "#" not in t))
def test_tracking_links_with_a_forged_token_are_refused(ingest: Ingest, open_token: str,
                                                        click_token: str) -> None:
    opened = ingest.client.get(f"/v1/track/open/{open_token}.gif")
    assert opened.status_code in (403, 404), opened.text
    clicked = ingest.client.get(f"/v1/track/click/{click_token}")
    assert clicked.status_code in (403, 404), clicked.text
    assert "location" not in clicked.headers  # no open redirect
    assert ingest.published() == []


# --- the genuine article (proves the tap sees what is published) ---------------------------------------
def test_genuine_callbacks_are_accepted_and_a_replay_is_the_same_event(ingest: Ingest) -> None:
    ingest.published()  # start from an empty tap
    now = int(time.time())
    answers = [
        ingest.client.post("/v1/webhooks/sms/dlr", params={"token": DLR_TOKEN}, content=DLR_BODY),
        ingest.client.post("/v1/webhooks/sms/provider", content=DLR_BODY, headers={
            "X-Postwire-Timestamp": str(now),
            "X-Postwire-Signature": provider_signature(PROVIDER_SECRET, now, DLR_BODY)}),
        ingest.client.post("/v1/webhooks/whatsapp", content=WA_BODY,
                           headers={"X-Hub-Signature-256": meta_signature(WA_BODY)}),
        # a captured request replayed inside the window: accepted, but it is the same event again
        ingest.client.post("/v1/webhooks/whatsapp", content=WA_BODY,
                           headers={"X-Hub-Signature-256": meta_signature(WA_BODY)}),
    ]
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    handshake = ingest.client.get("/v1/webhooks/whatsapp", params={
        "hub.mode": "subscribe", "hub.challenge": "8675309", "hub.verify_token": VERIFY_TOKEN})
    assert handshake.status_code == 200 and handshake.text == "8675309"
    deadline = time.monotonic() + 15
    seen: list[tuple[str, bytes]] = []
    while len(seen) < 4 and time.monotonic() < deadline:
        seen += ingest.published()
        time.sleep(0.1)
    keys = sorted(k for k, _ in seen)
    assert keys == ["event.status.sms", "event.status.sms", "event.status.whatsapp",
                    "event.status.whatsapp"], keys
    wa_ids = {json.loads(b)["event_id"] for k, b in seen if k == "event.status.whatsapp"}
    assert len(wa_ids) == 1, "a replayed notification became a second, different event"

