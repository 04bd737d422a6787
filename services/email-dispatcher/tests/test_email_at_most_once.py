"""At most once across failures between the SMTP answer and its record (real SecantusDB and a real
aiosmtpd relay; the dispatcher driven directly, with its claim store failing as MongoDB down would)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
import pytest
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import AutoReconnect

from postwire_contracts.messages import StatusEvent
from postwire_contracts.status import Status
from postwire_email_dispatcher.claims import Claims
from postwire_email_dispatcher.dispatch import DispatchConfig, Dispatcher, Transports
from postwire_email_dispatcher.stores import DomainKeys, Suppressions
from postwire_email_dispatcher.transport import RelayTransport
from postwire_platform.clock import utcnow
from postwire_platform.mongo import DOMAINS, EMAIL_DISPATCHES, SUPPRESSIONS, Document
from postwire_testing.smtp_sink import SmtpSink

from .email_support import command


class FlakyClaims(Claims):
    """Claims whose first ``finish`` fails as it does while MongoDB is down."""

    failures = 1
    sink: SmtpSink | None = None
    mails_at_mark: list[int] = []

    async def mark_data(self, message_id: str, now: datetime) -> None:
        assert self.sink is not None
        self.mails_at_mark.append(len(self.sink.messages))
        await super().mark_data(message_id, now)

    async def finish(self, message_id: str, now: datetime, state: str,
                     fields: dict[str, Any]) -> Document:
        if self.failures:
            self.failures -= 1
            raise AutoReconnect("connection refused (MongoDB down)")
        return await super().finish(message_id, now, state, fields)


class Events:
    def __init__(self) -> None:
        self.events: list[StatusEvent] = []

    async def publish(self, message: msgspec.Struct, routing_key: str, *,
                      message_id: str | None = None, headers: dict[str, Any] | None = None) -> None:
        assert isinstance(message, StatusEvent)
        self.events.append(message)

    async def delay(self, message: msgspec.Struct, target_queue: str, seconds: float, *,
                    message_id: str | None = None) -> None:
        raise AssertionError("nothing is retried here")


async def test_an_answer_whose_record_failed_is_recorded_on_redelivery_not_resent(
        db: AsyncDatabase[Document]) -> None:
    events = Events()
    with SmtpSink() as sink:
        relay = RelayTransport("127.0.0.1", sink.port, tls="none", timeout=5.0)
        claims = FlakyClaims(db[EMAIL_DISPATCHES], "worker-1", lease=0.0)
        claims.sink, claims.mails_at_mark = sink, []
        dispatcher = Dispatcher(
            claims, events,
            Transports(sandbox=relay, live=relay), DomainKeys(db[DOMAINS], None, ttl=0.0, clock=utcnow),
            Suppressions(db[SUPPRESSIONS]), DispatchConfig([1.0], 1.0, None))
        cmd = command()
        with pytest.raises(AutoReconnect):
            await dispatcher.dispatch(cmd)  # delivered, but its outcome could not be written
        claim = await db[EMAIL_DISPATCHES].find_one({"_id": cmd.message_id})
        assert claim is not None and claim["state"] == "processing" and claim["data_at"]
        await dispatcher.dispatch(cmd)  # the redelivery (lease already expired)
        await relay.aclose()
    assert len(sink.messages_to("ada@example.com")) == 1
    assert claims.mails_at_mark == [0]  # recorded before the relay had the message, once
    claim = await db[EMAIL_DISPATCHES].find_one({"_id": cmd.message_id})
    assert claim is not None and claim["state"] == "sent" and claim["attempts"] == 1
    assert [e.status for e in events.events] == [Status.PROCESSING, Status.SENT]
