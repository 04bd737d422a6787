"""sms-dispatcher test kit: an event tap on the real broker, settings, a running app, commands."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from faststream.rabbit import RabbitBroker
from litestar import Litestar
from litestar.testing import AsyncTestClient

from postwire_contracts.messages import SendSms, StatusEvent
from postwire_contracts.status import Status
from postwire_platform.broker import Publisher
from postwire_platform.clock import utcnow
from postwire_platform.ids import new_id
from postwire_sms_dispatcher.app import create_app
from postwire_sms_dispatcher.settings import SmsDispatcherSettings


class EventTap:
    """Every StatusEvent published on the exchange, in arrival order."""

    def __init__(self, broker: RabbitBroker) -> None:
        self.broker = broker
        self.publisher = Publisher(broker)
        self.events: list[StatusEvent] = []

    def of(self, message_id: str, status: Status | None = None) -> list[StatusEvent]:
        """The events of one message (optionally of one status)."""
        return [e for e in self.events
                if e.message_id == message_id and (status is None or e.status is status)]

    async def wait_for(self, message_id: str, status: Status, count: int = 1,
                       timeout: float = 15.0) -> StatusEvent:
        """Wait until ``count`` events of ``status`` arrived for the message; return the last."""
        deadline = time.monotonic() + timeout
        while len(self.of(message_id, status)) < count:
            if time.monotonic() > deadline:
                seen = [(e.status.value, e.event_id) for e in self.of(message_id)]
                raise TimeoutError(f"no {count}x {status} for {message_id}; saw {seen}")
            await asyncio.sleep(0.02)
        return self.of(message_id, status)[-1]


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
