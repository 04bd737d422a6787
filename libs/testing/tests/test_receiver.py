"""The webhook receiver records requests, answers as told and verifies Standard Webhooks signatures."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from postwire_platform.tenancy import generate_webhook_secret
from postwire_testing.receiver import WebhookReceiver


def _signed(secret: str, body: bytes, msg_id: str = "msg_1") -> dict[str, str]:
    now = datetime.now(UTC)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, now, body.decode()),
            "content-type": "application/json"}


async def test_records_answers_as_told_and_verifies() -> None:
    secret = generate_webhook_secret()
    body = b'{"type":"sms_delivered","data":{"messageId":"m1"}}'
    async with WebhookReceiver() as hooks, httpx.AsyncClient(timeout=5) as client:
        assert hooks.url.startswith("http://127.0.0.1:") and hooks.url.endswith("/hook")
        hooks.respond(500, times=2)
        hooks.respond(410, headers={"x-reason": "gone"})
        codes = [(await client.post(hooks.url, content=body, headers=_signed(secret, body)))
                 .status_code for _ in range(4)]
        assert codes == [500, 500, 410, 200]
        seen = await hooks.wait_for(lambda reqs: len(reqs) == 4, timeout=5)
        assert all(r.body == body and r.method == "POST" and r.path == "/hook" for r in seen)
        assert seen[0].headers["webhook-id"] == "msg_1"
        assert seen[0].json()["data"]["messageId"] == "m1"
        assert hooks.verify(secret)["type"] == "sms_delivered"
        assert len(hooks.verify_all(secret)) == 4
        with pytest.raises(WebhookVerificationError):
            hooks.verify(generate_webhook_secret())
        with pytest.raises(TimeoutError):
            await hooks.wait_for(lambda reqs: len(reqs) > 4, timeout=0.2)
        hooks.clear()
        assert hooks.requests == []
