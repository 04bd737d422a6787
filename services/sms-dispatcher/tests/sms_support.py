"""sms-dispatcher test kit: an event tap on the real broker, settings, a running app, commands."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from postwire_contracts.messages import SendSms
from postwire_platform.clock import utcnow
from postwire_platform.ids import new_id
from postwire_sms_dispatcher.app import create_app
from postwire_sms_dispatcher.settings import SmsDispatcherSettings


def make_settings(amqp_url: str, mongodb_url: str, db_name: str,
                  **overrides: Any) -> SmsDispatcherSettings:
    """Settings for a test: short lease and retries."""
    values: dict[str, Any] = {
        "amqp_url": amqp_url, "mongodb_url": mongodb_url, "mongodb_database": db_name,
        "dispatch_lease_seconds": 1.0, "sms_retry_delays": [0.2, 0.4], "shutdown_timeout": 5.0,
        "sandbox_dlr_delay": 0.05, "sms_carrier_timeout": 2.0,
    }
    values.update(overrides)
    return SmsDispatcherSettings(**values)


@asynccontextmanager
async def running(settings: SmsDispatcherSettings, **kwargs: Any) -> AsyncIterator[Litestar]:
    """The dispatcher app with its lifespan running; ready once entered."""
    app = create_app(settings, **kwargs)
    async with AsyncTestClient(app) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        yield app


def command(to: str = "+447700900123", *, live: bool = True, **overrides: Any) -> SendSms:
    """A fresh SendSms with a new message id."""
    values: dict[str, Any] = {
        "message_id": new_id(), "tenant_id": "ten_test", "live": live, "to": to,
        "body": "Your code is 123456", "sender_id": "Postwire", "accepted_at": utcnow(),
    }
    values.update(overrides)
    return SendSms(**values)
