"""Signing, the payload and the retry schedule, without servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import msgspec
from standardwebhooks import Webhook

from postwire_contracts.examples import EXAMPLES
from postwire_contracts.messages import StatusChanged
from postwire_webhook_fanout.delivery import next_delay, retry_after_seconds
from postwire_webhook_fanout.signing import payload, sign, signed_headers, webhook_id


def test_the_standard_webhooks_test_vector() -> None:
    at = datetime.fromtimestamp(1614265330, UTC)
    got = sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", at,
               b'{"test": 2432232314}')
    assert got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_webhook_id_is_stable_per_event_and_endpoint() -> None:
    one = webhook_id("evt_1", "we_a")
    assert one == webhook_id("evt_1", "we_a") and one.startswith("msg_")
    assert one != webhook_id("evt_1", "we_b") and one != webhook_id("evt_2", "we_a")


def test_the_payload_and_headers_verify() -> None:
    note = msgspec.json.decode(EXAMPLES["notify.status.v1"], type=StatusChanged)
    body = payload(note)
    assert msgspec.json.decode(body) == {
        "type": "sms_delivered", "timestamp": "2026-11-21T12:00:02Z",
        "data": {"messageId": "01JD0000000000000000000000", "channel": "sms", "status": "DELIVERED",
                 "eventStatus": "DELIVERED", "recipient": note.recipient, "providerMessageId": None,
                 "errorCode": None, "errorReason": None, "metadata": {"order": "42"},
                 "occurredAt": "2026-11-21T12:00:02Z"}}
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    headers = signed_headers(secret, webhook_id(note.event_id, "we_a"), datetime.now(UTC), body)
    assert Webhook(secret).verify(body, headers)["type"] == "sms_delivered"


def test_the_retry_schedule_and_retry_after() -> None:
    delays = [5.0, 300.0, 1800.0]
    assert [next_delay(delays, n, None) for n in (1, 2, 3, 4)] == [5, 300, 1800, None]
    assert next_delay(delays, 1, 60) == 300  # the first scheduled delay that honours it
    assert next_delay(delays, 2, 10) == 300  # never sooner than the schedule
    assert next_delay(delays, 1, 99999) == 5  # beyond the schedule: ignored
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90
    assert retry_after_seconds("soon", now) is None and retry_after_seconds(None, now) is None
