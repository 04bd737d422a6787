"""At most once across failures between the SMTP answer and its record (real SecantusDB and a real
aiosmtpd relay; the dispatcher driven directly, with its claim store failing as MongoDB down would)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import msgspec
import pytest
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import AutoReconnect

from postwire_contracts.messages import SendEmail
from postwire_contracts.status import Status
from postwire_email_dispatcher.claims import Claims
from postwire_email_dispatcher.dispatch import DispatchConfig, Dispatcher, Transports
from postwire_email_dispatcher.stores import DomainKeys, Suppressions
from postwire_email_dispatcher.transport import EmailTransport, RelayTransport
from postwire_platform.clock import Clock, utcnow
from postwire_platform.leases import Lease
from postwire_platform.mongo import DOMAINS, EMAIL_DISPATCHES, SUPPRESSIONS, Document
from postwire_platform.uncancellable import finish_detached
from postwire_testing.doubles import HandClock, KeptEvents
from postwire_testing.smtp_sink import SmtpSink

from .email_support import GatedRelay, command


class FlakyClaims(Claims):
    """Claims whose first ``finish`` fails as it does while MongoDB is down."""

    failures = 1
    sink: SmtpSink | None = None
    mails_at_mark: list[int] = []

    async def mark_data(self, lease: Lease, now: datetime) -> None:
        assert self.sink is not None
        self.mails_at_mark.append(len(self.sink.messages))
        await super().mark_data(lease, now)

    async def finish(self, message_id: str, now: datetime, state: str,
                     fields: dict[str, Any], lease: Lease | None = None) -> Document:
        if self.failures:
            self.failures -= 1
            raise AutoReconnect("connection refused (MongoDB down)")
        return await super().finish(message_id, now, state, fields, lease)


class Events(KeptEvents):
    """The status events (those published together one by one); nothing may be retried."""

    async def delay(self, message: msgspec.Struct, target_queue: str, seconds: float, *,
                    message_id: str | None = None) -> None:
        raise AssertionError("nothing is retried here")


def direct_dispatcher(db: AsyncDatabase[Document], claims: Claims, events: KeptEvents,
                      relay: EmailTransport, clock: Clock = utcnow, *,
                      suppressions: Suppressions | None = None,
                      processing_hold: float = 0.2) -> Dispatcher:
    """The dispatcher driven directly: ``relay`` for every send, no DKIM key, one retry."""
    return Dispatcher(claims, events, Transports(sandbox=relay, live=relay),
                      DomainKeys(db[DOMAINS], None, ttl=0.0, clock=utcnow),
                      suppressions or Suppressions(db[SUPPRESSIONS]),
                      DispatchConfig([1.0], 1.0, None, processing_hold=processing_hold), clock)


async def test_an_answer_whose_record_failed_is_recorded_on_redelivery_not_resent(
        db: AsyncDatabase[Document]) -> None:
    events = Events()
    with SmtpSink() as sink:
        relay = RelayTransport("127.0.0.1", sink.port, tls="none", timeout=5.0)
        claims = FlakyClaims(db[EMAIL_DISPATCHES], "worker-1", lease=0.0)
        claims.sink, claims.mails_at_mark = sink, []
        dispatcher = direct_dispatcher(db, claims, events, relay)
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
    # the first delivery's PROCESSING, then the redelivery's PROCESSING again (the same event, in
    # case the first did not get out either) with SENT
    assert [e.status for e in events.events] == [Status.PROCESSING, Status.PROCESSING, Status.SENT]
    assert events.events[0].event_id == events.events[1].event_id


class LostAnswerClaims(Claims):
    """Claims whose first ``mark_data`` is applied and then reported failed, and whose first
    ``release`` fails: MongoDB stopping between its write and its answer, and staying down."""

    lost_marks = 1
    failed_releases = 1

    async def mark_data(self, lease: Lease, now: datetime) -> None:
        await super().mark_data(lease, now)
        if self.lost_marks:
            self.lost_marks -= 1
            raise AutoReconnect("connection closed")

    async def release(self, lease: Lease, now: datetime, error: str) -> None:
        if self.failed_releases:
            self.failed_releases -= 1
            raise AutoReconnect("connection refused (MongoDB down)")
        await super().release(lease, now, error)


async def attempt_with_a_lost_mark(db: AsyncDatabase[Document], events: Events,
                                   relay: EmailTransport) -> tuple[Dispatcher, SendEmail]:
    """A first attempt whose DATA mark was stored but reported failed (so DATA was abandoned) and
    whose release failed too: the claim is left ``processing`` with ``data_at`` set."""
    dispatcher = direct_dispatcher(
        db, LostAnswerClaims(db[EMAIL_DISPATCHES], "worker-1", lease=0.0), events, relay)
    cmd = command()
    with pytest.raises(AutoReconnect):
        await dispatcher.dispatch(cmd)
    claim = await db[EMAIL_DISPATCHES].find_one({"_id": cmd.message_id})
    assert claim is not None and claim["state"] == "processing" and claim["data_at"]
    return dispatcher, cmd


async def test_a_data_mark_whose_answer_was_lost_is_not_read_as_an_unknown_outcome(
        db: AsyncDatabase[Document]) -> None:
    """DATA is abandoned when its mark cannot be confirmed; the mark may be in the claim all the same,
    and the take-over by the same process knows that nothing was sent, so it sends."""
    events = Events()
    with SmtpSink() as sink:
        relay = RelayTransport("127.0.0.1", sink.port, tls="none", timeout=5.0)
        dispatcher, cmd = await attempt_with_a_lost_mark(db, events, relay)
        assert sink.messages_to("ada@example.com") == []
        await dispatcher.dispatch(cmd)  # the redelivery takes the expired claim over
        await relay.aclose()
    assert len(sink.messages_to("ada@example.com")) == 1
    claim = await db[EMAIL_DISPATCHES].find_one({"_id": cmd.message_id})
    assert claim is not None and claim["state"] == "sent" and claim["attempts"] == 2
    statuses = [(e.status, e.provider_status) for e in events.events]
    assert statuses == [(Status.PROCESSING, None), (Status.PROCESSING, "deferred"),
                        (Status.PROCESSING, None), (Status.SENT, "250")], statuses


async def test_a_data_mark_written_by_another_owner_still_stops_a_resend(
        db: AsyncDatabase[Document]) -> None:
    """The lost-answer allowance covers only the mark this process wrote: a later mark by another
    worker (which may have begun DATA) still ends the message ``outcome_unknown``."""
    events = Events()
    with SmtpSink() as sink:
        relay = RelayTransport("127.0.0.1", sink.port, tls="none", timeout=5.0)
        dispatcher, cmd = await attempt_with_a_lost_mark(db, events, relay)
        other = Claims(db[EMAIL_DISPATCHES], "worker-2", lease=0.0)
        taken = await other.acquire(cmd.message_id, utcnow())
        assert taken.kind == "owned" and taken.lease is not None
        await other.mark_data(taken.lease, utcnow() + timedelta(seconds=1))  # then worker-2 died
        await db[EMAIL_DISPATCHES].update_one(  # and its lease ran out
            {"_id": cmd.message_id}, {"$set": {"lease_until": utcnow() - timedelta(seconds=1)}})
        await dispatcher.dispatch(cmd)
        await relay.aclose()
    assert sink.messages_to("ada@example.com") == []
    claim = await db[EMAIL_DISPATCHES].find_one({"_id": cmd.message_id})
    assert claim is not None and claim["state"] == "failed" and claim["error_code"] == "outcome_unknown"


async def test_a_handler_cancelled_during_the_smtp_transaction_still_records_its_answer(
        db: AsyncDatabase[Document]) -> None:
    """A closing channel cancels the handler mid-transaction (a broker restart); the transaction and
    the record of its answer go on, so the redelivered command republishes SENT: not a second send,
    and not ``outcome_unknown``."""
    events = Events()
    with SmtpSink() as sink:
        relay = GatedRelay(RelayTransport("127.0.0.1", sink.port, tls="none", timeout=5.0))
        claims = Claims(db[EMAIL_DISPATCHES], "worker-1", lease=0.0)
        dispatcher = direct_dispatcher(db, claims, events, relay)
        cmd = command()
        handler = asyncio.create_task(dispatcher.dispatch(cmd))
        try:
            await asyncio.wait_for(relay.entered.wait(), 10)
            handler.cancel()
            with pytest.raises(asyncio.CancelledError):
                await handler
            relay.gate.set()
            await finish_detached(5)
            claim = await db[EMAIL_DISPATCHES].find_one({"_id": cmd.message_id})
            assert claim is not None and claim["state"] == "sent"
            await dispatcher.dispatch(cmd)  # the redelivery
        finally:
            relay.gate.set()
            await relay.aclose()
    assert len(sink.messages_to("ada@example.com")) == 1
    statuses = [e.status for e in events.events]
    assert statuses == [Status.PROCESSING, Status.SENT, Status.PROCESSING, Status.SENT], statuses
    assert events.events[1].event_id == events.events[3].event_id


class RacingClaims(Claims):
    """Claims whose first DATA mark waits for ``first_go`` before it is written and whose first
    ``finish`` waits for ``second_go``; releases are counted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.marking, self.first_go = asyncio.Event(), asyncio.Event()
        self.finishing, self.second_go = asyncio.Event(), asyncio.Event()
        self.marks = self.finishes = self.releases = 0

    async def mark_data(self, *args: Any) -> None:
        self.marks += 1
        if self.marks == 1:
            self.marking.set()
            await self.first_go.wait()
        await super().mark_data(*args)

    async def finish(self, *args: Any) -> Document:
        self.finishes += 1
        if self.finishes == 1:
            self.finishing.set()
            await self.second_go.wait()
        return await super().finish(*args)

    async def release(self, *args: Any) -> None:
        self.releases += 1
        await super().release(*args)


async def test_a_handler_stalled_past_its_lease_sends_nothing_once_another_took_over(
        db: AsyncDatabase[Document]) -> None:
    """X stalls right before its DATA mark (a slow MongoDB, say) until its lease has run out; Y, a
    second delivery of the same message in the same process, takes the claim over and sends. X's
    mark then finds that the claim is no longer its own acquisition's: X ends without DATA, without
    a release (which would wipe Y's lease and mark) and without a retry, and its PROCESSING, still
    held for an outcome (a long hold here), is Y's to announce."""
    events = Events()
    clock = HandClock()
    with SmtpSink() as sink:
        relay = RelayTransport("127.0.0.1", sink.port, tls="none", timeout=5.0)
        claims = RacingClaims(db[EMAIL_DISPATCHES], "worker-1", lease=3.0)
        dispatcher = direct_dispatcher(db, claims, events, relay, clock, processing_hold=30.0)
        cmd = command()
        x = asyncio.create_task(dispatcher.dispatch(cmd))
        try:
            await asyncio.wait_for(claims.marking.wait(), 10)
            clock.advance(4)  # X's lease has run out
            y = asyncio.create_task(dispatcher.dispatch(cmd))
            await asyncio.wait_for(claims.finishing.wait(), 10)  # Y sent; its answer not recorded yet
            assert len(sink.messages_to("ada@example.com")) == 1
            claims.first_go.set()
            await asyncio.wait_for(x, 10)
            claims.second_go.set()
            await asyncio.wait_for(y, 10)
        finally:
            claims.first_go.set()
            claims.second_go.set()
            await relay.aclose()
    assert len(sink.messages_to("ada@example.com")) == 1
    assert claims.releases == 0 and claims.finishes == 1
    claim = await db[EMAIL_DISPATCHES].find_one({"_id": cmd.message_id})
    assert claim is not None and claim["state"] == "sent" and claim["attempts"] == 2
    statuses = [(e.status, e.provider_status) for e in events.events]
    assert statuses == [(Status.PROCESSING, None), (Status.SENT, "250")], statuses
    assert len(events.messages) == 1  # Y's PROCESSING and SENT together



class FirstFinishHeld(Claims):
    """Claims whose first ``finish`` waits for ``go``: an answer not recorded yet."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.finishing, self.go = asyncio.Event(), asyncio.Event()

    async def finish(self, *args: Any) -> Document:
        if not self.finishing.is_set():
            self.finishing.set()
            await self.go.wait()
        return await super().finish(*args)


class FirstLookupHeld(Suppressions):
    """Suppressions whose first lookup waits for ``go`` (``held`` is set once it waits)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.held, self.go = asyncio.Event(), asyncio.Event()

    async def find(self, tenant_id: str, addresses: list[str]) -> dict[str, Document]:
        if not self.held.is_set():
            self.held.set()
            await self.go.wait()
        return await super().find(tenant_id, addresses)


async def test_a_failure_decided_after_a_take_over_does_not_stand_over_the_send_of_the_taker(
        db: AsyncDatabase[Document]) -> None:
    """X stalls before its checks until its lease has run out; Y takes the claim over and the relay
    has accepted Y's message, its answer not recorded yet, when X finds the recipient suppressed
    meanwhile. That FAILED is X's own decision, recorded only under X's lease: X stops and the
    message ends SENT (before, X's FAILED was recorded first and Y's SENT lost under it)."""
    events = Events()
    clock = HandClock()
    suppressions = FirstLookupHeld(db[SUPPRESSIONS])
    with SmtpSink() as sink:
        relay = RelayTransport("127.0.0.1", sink.port, tls="none", timeout=5.0)
        claims = FirstFinishHeld(db[EMAIL_DISPATCHES], "worker-1", lease=3.0)
        dispatcher = direct_dispatcher(db, claims, events, relay, clock, suppressions=suppressions,
                                       processing_hold=30.0)
        cmd = command()
        x = asyncio.create_task(dispatcher.dispatch(cmd))
        try:
            await asyncio.wait_for(suppressions.held.wait(), 10)  # X, before its checks
            clock.advance(4)  # X's lease has run out
            y = asyncio.create_task(dispatcher.dispatch(cmd))
            await asyncio.wait_for(claims.finishing.wait(), 10)  # Y sent; answer not recorded
            await Suppressions(db[SUPPRESSIONS]).add(cmd.tenant_id, "ada@example.com",
                                                     reason="complaint", message_id="other",
                                                     detail={}, now=utcnow())
            suppressions.go.set()
            await asyncio.wait_for(x, 10)
            claims.go.set()
            await asyncio.wait_for(y, 10)
        finally:
            suppressions.go.set()
            claims.go.set()
            await relay.aclose()
    assert len(sink.messages_to("ada@example.com")) == 1
    claim = await db[EMAIL_DISPATCHES].find_one({"_id": cmd.message_id})
    assert claim is not None and claim["state"] == "sent" and "error_code" not in claim
    statuses = [(e.status, e.provider_status) for e in events.events]
    assert statuses == [(Status.PROCESSING, None), (Status.SENT, "250")], statuses
