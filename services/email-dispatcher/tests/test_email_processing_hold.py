"""PROCESSING waits for the SMTP answer and goes out with it (one AMQP message), against real RabbitMQ,
SecantusDB and an aiosmtpd relay."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts.messages import SendEmail
from postwire_contracts.status import Status
from postwire_email_dispatcher.claims import Claims
from postwire_email_dispatcher.dispatch import DispatchConfig, Dispatcher, Transports
from postwire_email_dispatcher.stores import DomainKeys, Suppressions
from postwire_email_dispatcher.transport import RelayTransport
from postwire_platform.broker import Publisher
from postwire_platform.clock import utcnow
from postwire_platform.mongo import DOMAINS, EMAIL_DISPATCHES, SUPPRESSIONS, Document
from postwire_testing.smtp_sink import SmtpSink
from postwire_testing.taps import EventTap

from .email_support import GatedRelay, command


class DelaysKept:
    """Publishes status events to the real broker; keeps delayed commands (no app declared their
    delay queues here)."""

    def __init__(self, inner: Publisher) -> None:
        self.inner = inner
        self.delayed: list[msgspec.Struct] = []

    async def publish(self, message: msgspec.Struct, routing_key: str, *,
                      message_id: str | None = None, headers: dict[str, Any] | None = None) -> None:
        await self.inner.publish(message, routing_key, message_id=message_id, headers=headers)

    async def delay(self, message: msgspec.Struct, target_queue: str, seconds: float, *,
                    message_id: str | None = None) -> None:
        self.delayed.append(message)


@pytest.mark.parametrize(("relay_answers_within_the_hold", "pair_events"),
                         [(True, True), (False, True), (True, False)])
async def test_processing_goes_out_with_the_outcome_unless_the_relay_is_slow(
        tap: EventTap, db: AsyncDatabase[Document], relay_answers_within_the_hold: bool,
        pair_events: bool) -> None:
    with SmtpSink() as sink:
        relay = GatedRelay(RelayTransport("127.0.0.1", sink.port, tls="none", timeout=5.0))
        dispatcher = Dispatcher(
            Claims(db[EMAIL_DISPATCHES], "worker-1", lease=30.0), tap.publisher,
            Transports(sandbox=relay, live=relay), DomainKeys(db[DOMAINS], None, ttl=0.0, clock=utcnow),
            Suppressions(db[SUPPRESSIONS]),
            DispatchConfig([1.0], 1.0, None, processing_hold=0.5, pair_events=pair_events))
        cmd = command()
        handler = asyncio.create_task(dispatcher.dispatch(cmd))
        try:
            await asyncio.wait_for(relay.entered.wait(), 10)
            if relay_answers_within_the_hold:
                await asyncio.sleep(0.1)
                assert tap.of(cmd.message_id) == []  # PROCESSING is held for the answer
            else:  # out on its own after the hold, the transaction still open
                await tap.wait_for(cmd.message_id, Status.PROCESSING, timeout=5)
                assert len(sink.messages) == 0
            relay.gate.set()
            await asyncio.wait_for(handler, 10)
        finally:
            relay.gate.set()
            await relay.aclose()
        await tap.wait_for(cmd.message_id, Status.SENT)
    assert len(sink.messages_to("ada@example.com")) == 1
    claim = await db[EMAIL_DISPATCHES].find_one({"_id": cmd.message_id})
    assert claim is not None
    await tap.expect_processing_then_sent(cmd.message_id, claim["created_at"],
                                          together=relay_answers_within_the_hold and pair_events)


async def test_a_deferral_rides_with_processing_and_the_retry_reports_its_own_outcome(
        tap: EventTap, db: AsyncDatabase[Document]) -> None:
    with SmtpSink() as sink:
        sink.fail_next(1, "421 4.7.0 try again later")
        relay = RelayTransport("127.0.0.1", sink.port, tls="none", timeout=5.0)
        kept = DelaysKept(tap.publisher)
        dispatcher = Dispatcher(
            Claims(db[EMAIL_DISPATCHES], "worker-1", lease=30.0), kept,
            Transports(sandbox=relay, live=relay), DomainKeys(db[DOMAINS], None, ttl=0.0, clock=utcnow),
            Suppressions(db[SUPPRESSIONS]), DispatchConfig([0.2], 1.0, None, processing_hold=0.5))
        cmd = command()
        await dispatcher.dispatch(cmd)  # deferred: the retry is a delayed command
        await tap.wait_for(cmd.message_id, Status.PROCESSING, count=2)
        [retry] = kept.delayed
        assert isinstance(retry, SendEmail) and retry.attempt == 1
        await dispatcher.dispatch(retry)
        await tap.wait_for(cmd.message_id, Status.SENT)
        await relay.aclose()
    # the first delivery's PROCESSING and its deferral in one message; the retry's PROCESSING (the
    # same event, from the claim's first time) and its SENT in another
    assert tap.published_statuses() == [[Status.PROCESSING, Status.PROCESSING],
                                        [Status.PROCESSING, Status.SENT]]
    assert [e.provider_status for e in tap.of(cmd.message_id)] == [None, "deferred", None, "250"]
    assert len(sink.messages_to("ada@example.com")) == 1
