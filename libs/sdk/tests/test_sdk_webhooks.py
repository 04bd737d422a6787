"""Webhook signature verification, checked against the ``standardwebhooks`` reference implementation."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime

import pytest
import standardwebhooks

from postwire_client import Webhook, WebhookVerificationError
from postwire_client.webhooks import verify

BODY = json.dumps({"type": "sms_delivered", "timestamp": "2026-11-21T12:00:00.000Z",
                   "data": {"messageId": "msg_1", "channel": "sms", "status": "DELIVERED",
                            "eventStatus": "DELIVERED", "recipient": "+14155552671",
                            "metadata": {"order": "42"}, "occurredAt": "2026-11-21T12:00:00.000Z"}})


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def signed(secret: str, body: str, *, msg_id: str = "msg_abc", at: int | None = None) -> dict[str, str]:
    """Headers as a Standard Webhooks sender (the reference library) makes them."""
    when = datetime.fromtimestamp(at, UTC) if at is not None else datetime.now(UTC).replace(microsecond=0)
    signature = standardwebhooks.Webhook(secret).sign(msg_id, when, body)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": signature}


def test_the_spec_test_vector() -> None:
    hook = Webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert hook.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}') == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    headers = {"Webhook-Id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "Webhook-Timestamp": "1614265330",
               "Webhook-Signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}
    assert hook.verify('{"test": 2432232314}', headers, now=1614265330 + 10) == {"test": 2432232314}


def test_a_delivery_signed_by_the_reference_library_verifies_and_decodes() -> None:
    secret = new_secret()
    headers = signed(secret, BODY)
    event = Webhook(secret).verify_event(BODY.encode(), headers)
    assert (event.type, event.data.message_id, event.data.status, event.data.metadata) == (
        "sms_delivered", "msg_1", "DELIVERED", {"order": "42"})
    assert verify(BODY, headers, secret)["data"]["recipient"] == "+14155552671"
    # and what we sign, the reference library accepts
    ours = Webhook(secret).sign("msg_x", int(headers["webhook-timestamp"]), BODY)
    standardwebhooks.Webhook(secret).verify(BODY, {**headers, "webhook-id": "msg_x",
                                                   "webhook-signature": ours})


def test_during_rotation_either_secret_verifies_a_delivery_with_two_signatures() -> None:
    old, new = new_secret(), new_secret()
    at = int(datetime.now(UTC).timestamp())
    both = " ".join([signed(old, BODY, at=at)["webhook-signature"],
                     signed(new, BODY, at=at)["webhook-signature"]])
    headers = {**signed(old, BODY, at=at), "webhook-signature": both}
    assert Webhook(old).verify(BODY, headers)["type"] == "sms_delivered"
    assert Webhook(new).verify(BODY, headers)["type"] == "sms_delivered"
    assert Webhook([new_secret(), new]).verify(BODY, headers)["type"] == "sms_delivered"
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        Webhook(new_secret()).verify(BODY, headers)


def test_forgeries_and_stale_deliveries_are_refused() -> None:
    secret = new_secret()
    hook = Webhook(secret)
    headers = signed(secret, BODY)
    now = int(headers["webhook-timestamp"])
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        hook.verify(BODY.replace("DELIVERED", "FAILED"), headers)
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        hook.verify(BODY, {**headers, "webhook-id": "msg_other"})
    with pytest.raises(WebhookVerificationError, match="too old"):
        hook.verify(BODY, headers, now=now + 301)
    with pytest.raises(WebhookVerificationError, match="future"):
        hook.verify(BODY, headers, now=now - 301)
    assert hook.verify(BODY, headers, now=now + 299)["type"] == "sms_delivered"
    with pytest.raises(WebhookVerificationError, match="missing"):
        hook.verify(BODY, {k: v for k, v in headers.items() if k != "webhook-signature"})
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        hook.verify(BODY, {**headers, "webhook-signature": "v2," + headers["webhook-signature"][3:]})
    with pytest.raises(WebhookVerificationError, match="Unix time"):
        hook.verify(BODY, {**headers, "webhook-timestamp": "yesterday"})
    with pytest.raises(ValueError, match="base64"):
        Webhook("whsec_???")
