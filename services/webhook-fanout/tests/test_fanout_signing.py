"""Signing, the payload, the retry schedule and the endpoint gate, without servers."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import msgspec
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from postwire_contracts.examples import EXAMPLES
from postwire_contracts.messages import StatusChanged
from postwire_contracts.status import Channel, Status
from postwire_contracts.webhooks import webhook_id
from postwire_platform.tenancy import generate_webhook_secret
from postwire_webhook_fanout.events import example_event, from_notification, status_changed
from postwire_webhook_fanout.gate import EndpointGate
from postwire_webhook_fanout.jobs import DeliveryJob, decode_job, encode_job
from postwire_webhook_fanout.schedule import Delay, next_delay, retry_after_seconds
from postwire_webhook_fanout.signing import sign, signed_headers

EXAMPLE = msgspec.json.decode(EXAMPLES["notify.status.v1"], type=StatusChanged)


def test_the_standard_webhooks_test_vector() -> None:
    at = datetime.fromtimestamp(1614265330, UTC)
    got = sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", at,
               b'{"test": 2432232314}')
    assert got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_payload_and_headers_verify() -> None:
    event = status_changed(EXAMPLE)
    assert event is not None and event.after == ["sms_sent"]
    body = bytes(event.body)
    assert msgspec.json.decode(body) == {
        "type": "sms_delivered", "timestamp": "2026-11-21T12:00:02Z",
        "data": {"messageId": "01JD0000000000000000000000", "channel": "sms", "status": "DELIVERED",
                 "eventStatus": "DELIVERED", "recipient": EXAMPLE.recipient,
                 "providerMessageId": None, "errorCode": None, "errorReason": None, "detail": {},
                 "metadata": {"order": "42"}, "live": True, "occurredAt": "2026-11-21T12:00:02Z"}}
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    headers = signed_headers([secret], webhook_id(EXAMPLE.event_id, "we_a"), datetime.now(UTC), body)
    assert Webhook(secret).verify(body, headers)["type"] == "sms_delivered"


def test_during_a_rotation_both_secrets_sign_and_either_verifies() -> None:
    old, new = generate_webhook_secret(), generate_webhook_secret()
    body = b'{"type":"sms_sent"}'
    headers = signed_headers([new, old], "msg_1", datetime.now(UTC), body)
    signatures = headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    assert Webhook(old).verify(body, headers) == Webhook(new).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_webhook_secret()).verify(body, headers)


def test_only_customer_events_are_built_and_unknown_kinds_are_ignored() -> None:
    internal = msgspec.structs.replace(EXAMPLE, event_type=None)
    assert from_notification(msgspec.json.encode(internal)) is None
    assert from_notification(b'{"kind":"notify.something_else.v9","x":1}') is None
    built = from_notification(EXAMPLES["notify.status.v1"])
    assert built is not None and built.event_type == "sms_delivered"
    with pytest.raises(msgspec.ValidationError):
        from_notification(b'{"kind":"notify.status.v1","event_id":1}')


def test_each_status_waits_for_the_events_that_precede_it() -> None:
    def after(status: Status, provider_id: str | None = "p1",
              channel: Channel = Channel.SMS) -> list[str]:
        note = msgspec.structs.replace(EXAMPLE, event_status=status, channel=channel,
                                       event_type=f"{channel.value}_{status.value.lower()}",
                                       provider_message_id=provider_id)
        event = status_changed(note)
        assert event is not None
        return event.after

    assert after(Status.SENT) == []
    assert after(Status.DELIVERED) == ["sms_sent"]
    assert after(Status.FAILED) == ["sms_sent"]
    assert after(Status.FAILED, provider_id=None) == []  # refused at submit: there was no SENT
    assert after(Status.READ, channel=Channel.WHATSAPP) == ["whatsapp_sent", "whatsapp_delivered"]


def test_a_test_event_looks_like_a_real_one() -> None:
    event = example_event("evt_t", "ten_a", "whatsapp_read", datetime(2026, 1, 2, tzinfo=UTC))
    data = msgspec.json.decode(bytes(event.body))["data"]
    assert data["test"] is True and data["channel"] == "whatsapp" and data["status"] == "READ"
    assert event.live is False and event.event_type == "whatsapp_read"


def test_jobs_round_trip_byte_for_byte_and_v1_jobs_still_decode() -> None:
    event = status_changed(EXAMPLE)
    assert event is not None
    job = DeliveryJob(event=event, endpoint_id="we_a", attempt=3)
    again = decode_job(encode_job(job))
    assert again is not None and bytes(again.event.body) == bytes(event.body)
    v1 = (b'{"kind":"webhook.delivery.v1","endpoint_id":"we_a","attempt":2,"notification":'
          + EXAMPLES["notify.status.v1"] + b"}")
    old = decode_job(v1)
    assert old is not None and (old.attempt, old.endpoint_id) == (2, "we_a")
    assert bytes(old.event.body) == bytes(event.body)


def test_the_retry_schedule_retry_after_and_jitter() -> None:
    delays = [5.0, 300.0, 1800.0]
    declared = [2.0, 5.0, 300.0, 1800.0]
    assert [next_delay(delays, declared, n, None) for n in (1, 2, 3, 4)] == [
        Delay(5), Delay(300), Delay(1800), None]
    assert next_delay(delays, declared, 1, 60) == Delay(300)  # rounded up to a declared delay
    assert next_delay(delays, declared, 2, 10) == Delay(300)  # never sooner than the schedule
    assert next_delay(delays, declared, 1, 99999) == Delay(1800)  # capped at the longest
    rng = random.Random(7)
    jittered = [next_delay(delays, declared, 2, None, jitter=0.1, rng=rng) for _ in range(50)]
    assert all(d is not None and d.queue == 300 for d in jittered)
    spread = {d.expiration for d in jittered if d is not None}
    assert len(spread) > 10 and all(e is not None and 270 <= e <= 300 for e in spread)
    assert next_delay(delays, declared, 1, 60, jitter=0.1) == Delay(300)  # Retry-After: no jitter
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90
    assert retry_after_seconds("soon", now) is None and retry_after_seconds(None, now) is None


def test_the_gate_limits_concurrency_and_breaks_the_circuit() -> None:
    clock = [0.0]
    gate = EndpointGate(limit=2, threshold=3, cooldown=10, clock=lambda: clock[0])
    assert [gate.admit("a"), gate.admit("a"), gate.admit("a")] == ["go", "go", "busy"]
    assert gate.admit("b") == "go"  # another endpoint is not affected
    gate.release("a", failed=True)
    gate.release("a", failed=True)
    assert gate.admit("a") == "go"
    gate.release("a", failed=True)  # third consecutive failure: open
    assert gate.is_open("a") and gate.admit("a") == "open"
    assert gate.admit("a", force=True) == "go"  # a last attempt is still made
    gate.release("a", failed=True)
    clock[0] = 11.0
    assert gate.admit("a") == "go"  # half-open: one probe
    assert gate.admit("a") == "open"  # and only one
    gate.release("a", failed=False)
    assert not gate.is_open("a") and gate.admit("a") == "go"
    gate.release("a", failed=False)
    gate.release("b", failed=False)


async def test_a_busy_fast_endpoint_is_waited_for_in_memory_a_slow_one_is_not() -> None:
    gate = EndpointGate(limit=1, threshold=3, cooldown=10)
    assert await gate.acquire("fast", wait=1.0) == "go"
    gate.release("fast", failed=False, latency=0.01)  # answered quickly
    assert await gate.acquire("fast", wait=1.0) == "go"
    waiting = asyncio.create_task(gate.acquire("fast", wait=5.0))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # busy: waits for the slot rather than being set aside
    gate.release("fast", failed=False, latency=0.01)
    assert await waiting == "go"
    # an endpoint whose attempt is still unanswered (or answered slowly, or failed) is not waited for
    assert await gate.acquire("hanging", wait=1.0) == "go"
    assert await gate.acquire("hanging", wait=1.0) == "busy"
    gate.release("slow", failed=False, latency=2.0)
    assert await gate.acquire("slow", wait=1.0) == "go"
    assert await gate.acquire("slow", wait=1.0) == "busy"


async def busy_quick_endpoint() -> EndpointGate:
    """A gate whose endpoint "fast" answered its last attempt quickly and has its one slot taken."""
    gate = EndpointGate(limit=1, waiters=3, threshold=3, cooldown=10)
    assert await gate.acquire("fast", wait=1.0) == "go"
    gate.release("fast", failed=False, latency=0.01)
    assert await gate.acquire("fast", wait=1.0) == "go"
    return gate


async def test_a_busy_fast_endpoint_has_its_own_cap_on_waiting_jobs() -> None:
    """``waiters`` jobs wait in memory for a quick endpoint at its limit, in order; the next is set
    aside at once (``busy``) rather than holding another consumer slot."""
    gate = await busy_quick_endpoint()
    waiting = [asyncio.create_task(gate.acquire("fast", wait=5.0)) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert not any(w.done() for w in waiting)
    assert await gate.acquire("fast", wait=5.0) == "busy"  # a fourth does not wait
    for i in range(3):
        gate.release("fast", failed=False, latency=0.01)
        assert await waiting[i] == "go"
        assert not any(w.done() for w in waiting[i + 1:])
    gate.release("fast", failed=False, latency=0.01)


async def test_a_freed_slot_goes_to_the_waiting_job_not_to_one_arriving_meanwhile() -> None:
    gate = await busy_quick_endpoint()
    waiting = asyncio.create_task(gate.acquire("fast", wait=5.0))
    await asyncio.sleep(0.05)
    gate.release("fast", failed=False, latency=0.01)
    assert gate.admit("fast") == "busy"  # arrived before the waiter ran: the slot is the waiter's
    assert await waiting == "go"
    gate.release("fast", failed=False, latency=0.01)


async def test_a_waiting_job_cancelled_after_a_slot_was_handed_over_passes_it_on() -> None:
    gate = await busy_quick_endpoint()
    first = asyncio.create_task(gate.acquire("fast", wait=5.0))
    second = asyncio.create_task(gate.acquire("fast", wait=5.0))
    await asyncio.sleep(0.05)
    gate.release("fast", failed=False, latency=0.01)  # handed to the first...
    first.cancel()  # ...whose consumer goes away before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await second == "go"
    gate.release("fast", failed=False, latency=0.01)
    assert gate.admit("fast") == "go"  # no slot leaked
