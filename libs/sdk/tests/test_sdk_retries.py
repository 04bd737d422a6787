"""Retries against a local scripted HTTP server: which answers are retried, with what, and how often."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from postwire_client import (
    APIConnectionError,
    AsyncPostwire,
    ConflictError,
    InternalServerError,
    Postwire,
    RateLimitError,
    RetryPolicy,
    ServiceUnavailableError,
    ValidationError,
)
from postwire_client.errors import parse_retry_after
from postwire_testing.servers import free_port

from .sdk_support import Answer, ScriptedServer

FAST = RetryPolicy(initial_delay=0.01, max_delay=0.05)
QUEUED = {"success": True, "data": {"id": "msg_1", "channel": "sms", "status": "QUEUED",
                                    "to": "+14155552671", "senderId": "Acme"}}
RATE_LIMITED = {"success": False, "error": "rate_limited", "message": "slow down", "code": 429}
UNAVAILABLE = {"success": False, "error": "service_unavailable",
               "message": "RabbitMQ is unavailable; retry shortly", "code": 503}


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer(Answer(201, QUEUED))
    with scripted:
        yield scripted


def client(server: ScriptedServer, retry: RetryPolicy = FAST) -> Postwire:
    return Postwire("pw_test_x", base_url=server.url, retry=retry)


def send(c: Postwire) -> str:
    return c.sms.send(to="+14155552671", body="hi", sender_id="Acme").id


def test_429_with_retry_after_then_201_is_one_send(server: ScriptedServer) -> None:
    server.answers = [Answer(429, RATE_LIMITED, {"Retry-After": "1"}), Answer(201, QUEUED)]
    with client(server) as c:
        assert send(c) == "msg_1"
    first, second = server.requests
    assert (first.method, first.path) == ("POST", "/v1/sms/send")
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert first.body == second.body
    assert first.json() == {"to": "+14155552671", "body": "hi", "senderId": "Acme"}
    assert first.headers["authorization"] == "Bearer pw_test_x"


async def test_503_is_retried_by_the_async_client_too(server: ScriptedServer) -> None:
    server.answers = [Answer(503, UNAVAILABLE, {"Retry-After": "0"}), Answer(503, UNAVAILABLE),
                      Answer(201, QUEUED)]
    async with AsyncPostwire("pw_test_x", base_url=server.url, retry=FAST) as c:
        sent = await c.sms.send(to="+14155552671", body="hi", sender_id="Acme")
    assert sent.id == "msg_1"
    assert len(server.requests) == 3
    assert len({r.headers["idempotency-key"] for r in server.requests}) == 1


def test_retries_are_bounded_and_the_last_error_is_raised(server: ScriptedServer) -> None:
    server.answers = [Answer(429, RATE_LIMITED, {"Retry-After": "0"})]
    with client(server, RetryPolicy(max_retries=2, initial_delay=0.01)) as c, pytest.raises(
            RateLimitError) as caught:
        send(c)
    assert len(server.requests) == 3
    error = caught.value
    assert (error.status_code, error.error, error.message, error.retry_after) == (
        429, "rate_limited", "slow down", 0.0)


def test_a_retry_after_longer_than_the_cap_is_not_waited_for(server: ScriptedServer) -> None:
    server.answers = [Answer(503, UNAVAILABLE, {"Retry-After": "3600"})]
    with client(server) as c, pytest.raises(ServiceUnavailableError) as caught:
        send(c)
    assert len(server.requests) == 1 and caught.value.retry_after == 3600


def test_a_channel_switched_off_is_not_an_outage(server: ScriptedServer) -> None:
    server.answers = [Answer(503, {"success": False, "error": "whatsapp_disabled",
                                   "message": "WhatsApp sending is switched off", "code": 503})]
    with client(server) as c, pytest.raises(ServiceUnavailableError) as caught:
        c.whatsapp.send(to="+14155552671", text="hi")
    assert len(server.requests) == 1 and caught.value.error == "whatsapp_disabled"


def test_a_validation_error_is_not_retried(server: ScriptedServer) -> None:
    server.answers = [Answer(422, {"success": False, "error": "validation_error",
                                   "message": "to: not a phone number", "code": 422, "field": "to"})]
    with client(server) as c, pytest.raises(ValidationError) as caught:
        send(c)
    assert len(server.requests) == 1
    assert (caught.value.field, caught.value.message) == ("to", "to: not a phone number")


def test_a_502_is_retried_only_when_repeating_is_safe(server: ScriptedServer) -> None:
    server.answers = [Answer(502, None, {"content-type": "text/plain"}), Answer(201, QUEUED)]
    with client(server) as c, pytest.raises(InternalServerError) as caught:
        c.webhook_endpoints.create(url="https://example.com/hook")  # a POST without idempotency key
    assert len(server.requests) == 1 and caught.value.error == "bad_gateway"

    server.requests.clear()
    server.answers = [Answer(502), Answer(200, {"data": [], "pagination": {
        "page": 1, "pageSize": 20, "total": 0, "totalPages": 0, "hasNext": False}})]
    with client(server) as c:
        assert c.sms.list().data == []  # a GET may be repeated
    assert len(server.requests) == 2


def test_a_send_still_in_flight_is_asked_again(server: ScriptedServer) -> None:
    in_progress = {"success": False, "error": "idempotency_request_in_progress",
                   "message": "a request with this Idempotency-Key is still being processed",
                   "code": 409}
    server.answers = [Answer(409, in_progress, {"Retry-After": "0"}), Answer(201, QUEUED)]
    with client(server) as c:
        assert send(c) == "msg_1"
    assert len(server.requests) == 2

    server.requests.clear()
    server.answers = [Answer(409, {"success": False, "error": "idempotency_key_reused",
                                   "message": "different body", "code": 409})]
    with client(server) as c, pytest.raises(ConflictError):
        send(c)
    assert len(server.requests) == 1


def test_no_server_at_all_is_a_connection_error_after_the_retries() -> None:
    port = free_port()
    with Postwire("pw_test_x", base_url=f"http://127.0.0.1:{port}", retry=FAST) as c, pytest.raises(
            APIConnectionError) as caught:
        c.sms.list()
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


def test_the_policy_honours_retry_after_and_jitters_its_own_backoff() -> None:
    policy = RetryPolicy(max_retries=5, initial_delay=1.0, max_delay=8.0, rng=random.Random(7))
    request = httpx.Request("POST", "http://x/v1/sms/send")
    limited = httpx.Response(429, headers={"Retry-After": "12"}, request=request)
    assert policy.after_response(0, limited, replayable=True) == 12.0
    assert policy.after_response(5, limited, replayable=True) is None  # out of retries
    plain = httpx.Response(503, request=request)
    for retry, cap in enumerate([1.0, 2.0, 4.0, 8.0, 8.0]):
        delay = policy.after_response(retry, plain, replayable=False)
        assert delay is not None and cap / 2 <= delay <= cap
    assert policy.after_response(0, httpx.Response(500, request=request), replayable=True) is None
    assert policy.after_error(0, httpx.ReadTimeout("slow"), replayable=False) is None
    assert policy.after_error(0, httpx.ReadTimeout("slow"), replayable=True) is not None
    assert policy.after_error(0, httpx.ConnectError("refused"), replayable=False) is not None


def test_retry_after_as_an_http_date() -> None:
    later = datetime.now(UTC) + timedelta(seconds=30)
    seconds = parse_retry_after(format_datetime(later, usegmt=True))
    assert seconds is not None and 20 <= seconds <= 31
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
