"""sms-dispatcher against real RabbitMQ, SecantusDB and a fake HTTP carrier on a real port."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
import pytest
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import AutoReconnect

from postwire_contracts import topology
from postwire_contracts.messages import SendSms, StatusEvent, StatusEvents
from postwire_contracts.status import Status
from postwire_platform.broker import EXCHANGE, Publisher, dead_queue
from postwire_platform.clock import utcnow
from postwire_platform.mongo import DISPATCHES, OPT_OUTS, Document
from postwire_platform.opt_outs import OptOutLookups
from postwire_platform.uncancellable import finish_detached
from postwire_sms_dispatcher import app as sms_app
from postwire_sms_dispatcher.carrier import HttpCarrier, SubmitRequest, SubmitResult
from postwire_sms_dispatcher.claims import Claims
from postwire_sms_dispatcher.dispatch import Carriers, DispatchConfig, Dispatcher
from postwire_sms_dispatcher.routes import HttpRoute, RoutingTable
from postwire_testing.fake_carrier import FakeCarrier
from postwire_testing.taps import EventTap

from .sms_support import command, make_settings, running


async def test_live_send_is_submitted_once_and_reported(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str,
        db: AsyncDatabase[Document]) -> None:
    async with FakeCarrier() as fake, running(make_settings(
            amqp_url, mongodb_url, db_name, sms_carrier_url=fake.url, sms_carrier_token="tok")):
        cmd = command()
        await tap.publisher.publish(cmd, topology.SEND_SMS)
        sent = await tap.wait_for(cmd.message_id, Status.SENT)

        statuses = [e.status for e in tap.of(cmd.message_id)]
        assert statuses == [Status.PROCESSING, Status.SENT]
        processing = tap.of(cmd.message_id, Status.PROCESSING)[0]
        assert processing.event_id == f"{cmd.message_id}:processing"
        assert processing.source == "sms-dispatcher" and processing.tenant_id == "ten_test"
        assert fake.count_for(cmd.message_id) == 1
        sub = fake.submissions[0]
        assert (sub.to, sub.text, sub.sender) == (cmd.to, cmd.body, "Postwire")
        assert sent.event_id == f"{cmd.message_id}:sent"
        assert sent.provider_message_id == sub.carrier_id
        assert sent.detail == {"carrier": "http"}
        assert sub.idempotency_key == cmd.message_id
        assert fake.requests[0].headers["authorization"] == "Bearer tok"
        query = parse_qs(urlsplit(sub.callback_url or "").query)
        assert query == {"token": ["dev-dlr-token"], "mid": [cmd.message_id]}
        claim = await db[DISPATCHES].find_one({"_id": cmd.message_id})
        assert claim is not None and claim["state"] == "sent"
        assert claim["provider_message_id"] == sub.carrier_id


async def test_duplicate_deliveries_never_send_twice(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str) -> None:
    async with FakeCarrier() as fake, running(make_settings(
            amqp_url, mongodb_url, db_name, sms_carrier_url=fake.url)):
        cmd = command()
        await tap.publisher.publish(cmd, topology.SEND_SMS)
        await tap.publisher.publish(cmd, topology.SEND_SMS)
        await tap.wait_for(cmd.message_id, Status.SENT, count=2)
        await tap.publisher.publish(cmd, topology.SEND_SMS)
        await tap.wait_for(cmd.message_id, Status.SENT, count=3)

        assert fake.count_for(cmd.message_id) == 1
        sent = tap.of(cmd.message_id, Status.SENT)
        assert {e.event_id for e in sent} == {f"{cmd.message_id}:sent"}
        assert len({(e.occurred_at, e.provider_message_id) for e in sent}) == 1
        processing = tap.of(cmd.message_id, Status.PROCESSING)
        assert {e.event_id for e in processing} == {f"{cmd.message_id}:processing"}


async def test_transient_failures_retry_through_the_delay_queue(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str,
        db: AsyncDatabase[Document]) -> None:
    async with FakeCarrier() as fake, running(make_settings(
            amqp_url, mongodb_url, db_name, sms_carrier_url=fake.url)):
        fake.fail_next(2, status=503)
        cmd = command()
        await tap.publisher.publish(cmd, topology.SEND_SMS)
        sent = await tap.wait_for(cmd.message_id, Status.SENT)

        assert fake.count_for(cmd.message_id) == 1
        assert sent.provider_message_id == fake.submissions[0].carrier_id
        keys = [r.headers.get("idempotency-key") for r in fake.requests]
        assert keys == [cmd.message_id] * 3
        claim = await db[DISPATCHES].find_one({"_id": cmd.message_id})
        assert claim is not None and claim["attempts"] == 3


async def test_carrier_down_beyond_the_schedule_fails(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str) -> None:
    async with FakeCarrier() as fake, running(make_settings(
            amqp_url, mongodb_url, db_name, sms_carrier_url=fake.url)):
        fake.fail_next(5, status=502)
        cmd = command()
        await tap.publisher.publish(cmd, topology.SEND_SMS)
        failed = await tap.wait_for(cmd.message_id, Status.FAILED)

        assert failed.error_code == "carrier_unavailable"
        assert len(fake.requests) == 3 and fake.count_for(cmd.message_id) == 0


async def test_permanent_rejection_fails_with_the_carriers_code(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str) -> None:
    cmd = command("+447700900999")
    async with FakeCarrier(reject_numbers={cmd.to}) as fake, running(make_settings(
            amqp_url, mongodb_url, db_name, sms_carrier_url=fake.url)):
        await tap.publisher.publish(cmd, topology.SEND_SMS)
        failed = await tap.wait_for(cmd.message_id, Status.FAILED)

        assert failed.event_id == f"{cmd.message_id}:failed"
        assert failed.error_code == "invalid_destination" and failed.error_reason
        assert len(fake.requests) == 1 and not tap.of(cmd.message_id, Status.SENT)


async def test_live_send_without_a_carrier_fails_no_carrier(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str) -> None:
    async with running(make_settings(amqp_url, mongodb_url, db_name, sms_carrier_url="")):
        cmd = command()
        await tap.publisher.publish(cmd, topology.SEND_SMS)
        failed = await tap.wait_for(cmd.message_id, Status.FAILED)
        assert failed.error_code == "no_carrier"


async def test_an_expired_lease_is_taken_over_and_resubmitted(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str,
        db: AsyncDatabase[Document]) -> None:
    cmd = command()
    now = utcnow()
    await db[DISPATCHES].insert_one({
        "_id": cmd.message_id, "state": "processing", "owner": "dead-worker",
        "lease_until": now - timedelta(seconds=5), "attempts": 1,
        "created_at": now - timedelta(seconds=40), "updated_at": now - timedelta(seconds=40)})
    async with FakeCarrier() as fake, running(make_settings(
            amqp_url, mongodb_url, db_name, sms_carrier_url=fake.url)):
        await tap.publisher.publish(cmd, topology.SEND_SMS)
        await tap.wait_for(cmd.message_id, Status.SENT)
        assert fake.count_for(cmd.message_id) == 1
        processing = tap.of(cmd.message_id, Status.PROCESSING)[0]
        assert processing.occurred_at == now - timedelta(seconds=40)
        claim = await db[DISPATCHES].find_one({"_id": cmd.message_id})
        assert claim is not None and claim["attempts"] == 2 and claim["state"] == "sent"


async def test_a_live_lease_is_rechecked_later(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str,
        db: AsyncDatabase[Document]) -> None:
    cmd = command()
    now = utcnow()
    await db[DISPATCHES].insert_one({
        "_id": cmd.message_id, "state": "processing", "owner": "busy-worker",
        "lease_until": now + timedelta(seconds=0.5), "attempts": 1,
        "created_at": now, "updated_at": now})
    async with FakeCarrier() as fake, running(make_settings(
            amqp_url, mongodb_url, db_name, sms_carrier_url=fake.url)):
        await tap.publisher.publish(cmd, topology.SEND_SMS)
        await tap.wait_for(cmd.message_id, Status.SENT)
        assert fake.count_for(cmd.message_id) == 1
        assert fake.submissions[0].received_at >= now + timedelta(seconds=0.5)


async def test_an_expired_message_is_not_sent(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str) -> None:
    async with FakeCarrier() as fake, running(make_settings(
            amqp_url, mongodb_url, db_name, sms_carrier_url=fake.url)):
        cmd = command(expires_at=utcnow() - timedelta(seconds=1), flow="OTP")
        await tap.publisher.publish(cmd, topology.SEND_SMS)
        failed = await tap.wait_for(cmd.message_id, Status.FAILED)
        assert failed.error_code == "expired" and fake.requests == []


async def test_a_mongo_outage_puts_the_message_back_instead_of_acking(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sms_app, "NACK_PAUSE", 0.05)
    async with FakeCarrier() as fake, running(make_settings(
            amqp_url, mongodb_url, db_name, sms_carrier_url=fake.url)) as app:
        runtime = app.state.runtime
        real = runtime.extras["dispatcher"]
        calls: list[str] = []

        class FlakyMongo:
            async def dispatch(self, cmd: SendSms) -> None:
                calls.append(cmd.message_id)
                if len(calls) == 1:
                    raise AutoReconnect("connection reset")
                await real.dispatch(cmd)

        runtime.extras["dispatcher"] = FlakyMongo()
        cmd = command()
        await tap.publisher.publish(cmd, topology.SEND_SMS)
        await tap.wait_for(cmd.message_id, Status.SENT)
        assert calls == [cmd.message_id, cmd.message_id] and fake.count_for(cmd.message_id) == 1


async def test_an_undecodable_command_is_dead_lettered(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str) -> None:
    async with running(make_settings(amqp_url, mongodb_url, db_name)):
        await tap.broker.publish(b'{"kind":"send.sms.v1","to":1}', exchange=EXCHANGE,
                                 routing_key=topology.SEND_SMS, persist=True)
        dead = await tap.broker.declare_queue(dead_queue(topology.SMS_SEND_QUEUE))
        for _ in range(200):
            got = await dead.get(no_ack=True, fail=False)
            if got is not None:
                assert got.body == b'{"kind":"send.sms.v1","to":1}'
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("nothing reached the dead-letter queue")


async def test_a_send_to_an_opted_out_number_fails_without_reaching_a_carrier(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str,
        db: AsyncDatabase[Document]) -> None:
    await db[OPT_OUTS].insert_one({"_id": "oo_1", "tenant_id": "ten_test", "channel": "sms",
                                   "address": "+447700900777", "source": "api",
                                   "created_at": utcnow()})
    async with FakeCarrier() as fake, running(make_settings(
            amqp_url, mongodb_url, db_name, sms_carrier_url=fake.url)):
        stopped = command("+447700900777")
        other_tenant = command("+447700900777", tenant_id="ten_other")
        sandboxed = command("+447700900777", live=False)
        for cmd in (stopped, other_tenant, sandboxed):
            await tap.publisher.publish(cmd, topology.SEND_SMS)
        for cmd in (stopped, sandboxed):
            failed = await tap.wait_for(cmd.message_id, Status.FAILED)
            assert failed.error_code == "opted_out"
        await tap.wait_for(other_tenant.message_id, Status.SENT)
        assert [s.reference for s in fake.submissions] == [other_tenant.message_id]


class HeldProcessing:
    """The real publisher, except that PROCESSING events wait until the test lets them go."""

    def __init__(self, inner: Publisher) -> None:
        self.inner = inner
        self.gate = asyncio.Event()

    async def publish(self, message: msgspec.Struct, routing_key: str, *,
                      message_id: str | None = None, headers: dict[str, Any] | None = None) -> None:
        events = message.events if isinstance(message, StatusEvents) else [message]
        if any(isinstance(e, StatusEvent) and e.status is Status.PROCESSING for e in events):
            await self.gate.wait()
        await self.inner.publish(message, routing_key, message_id=message_id, headers=headers)

    async def delay(self, message: msgspec.Struct, target_queue: str, seconds: float, *,
                    message_id: str | None = None) -> None:
        await self.inner.delay(message, target_queue, seconds, message_id=message_id)


async def test_the_carrier_gets_the_message_before_processing_is_confirmed_and_events_stay_in_order(
        tap: EventTap, db: AsyncDatabase[Document]) -> None:
    """PROCESSING is published alongside the submit, not before it; SENT still follows it."""
    sink = HeldProcessing(tap.publisher)
    async with FakeCarrier(dlr_stat=None) as fake:
        carrier = HttpCarrier(fake.url, "tok")
        table = RoutingTable(routes={"http": HttpRoute(url=fake.url)}, default=["http"])
        dispatcher = Dispatcher(
            Claims(db[DISPATCHES], "worker-a", 30.0), sink,
            Carriers(sandbox=carrier, routes={"http": carrier}, table=table),
            DispatchConfig(dlr_callback_url="http://127.0.0.1:9/dlr", dlr_token="t",
                           retry_delays=[0.2], recheck_seconds=1.0),
            opt_outs=OptOutLookups(db[OPT_OUTS], "sms"))
        cmd = command()
        handler = asyncio.create_task(dispatcher.dispatch(cmd))
        try:
            async with asyncio.timeout(10):
                while fake.count_for(cmd.message_id) == 0:
                    await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)
            assert not tap.of(cmd.message_id) and not handler.done()  # SENT waits for PROCESSING
            sink.gate.set()
            await asyncio.wait_for(handler, 10)
        finally:
            sink.gate.set()
            await carrier.aclose()
        await tap.wait_for(cmd.message_id, Status.SENT)
    assert [e.status for e in tap.of(cmd.message_id)] == [Status.PROCESSING, Status.SENT]
    assert fake.count_for(cmd.message_id) == 1


class GatedCarrier:
    """A carrier that answers when the test lets it."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.answered = False
        self.submits = 0

    async def submit(self, request: SubmitRequest) -> SubmitResult:
        self.submits += 1
        await self.release.wait()
        self.answered = True
        return SubmitResult(carrier_id=f"gc-{request.message_id}")


class Noting:
    """The real publisher, noting for each status event whether the carrier had answered then."""

    def __init__(self, inner: Publisher, carrier: GatedCarrier) -> None:
        self.inner = inner
        self.carrier = carrier
        self.noted: list[tuple[Status, bool]] = []

    async def publish(self, message: msgspec.Struct, routing_key: str, *,
                      message_id: str | None = None, headers: dict[str, Any] | None = None) -> None:
        for event in message.events if isinstance(message, StatusEvents) else [message]:
            if isinstance(event, StatusEvent):
                self.noted.append((event.status, self.carrier.answered))
        await self.inner.publish(message, routing_key, message_id=message_id, headers=headers)

    async def delay(self, message: msgspec.Struct, target_queue: str, seconds: float, *,
                    message_id: str | None = None) -> None:
        await self.inner.delay(message, target_queue, seconds, message_id=message_id)


@pytest.mark.parametrize(("carrier_answers_within_the_hold", "pair_events"),
                         [(True, True), (False, True), (True, False)])
async def test_processing_goes_out_with_the_outcome_unless_the_carrier_is_slow(
        tap: EventTap, db: AsyncDatabase[Document], carrier_answers_within_the_hold: bool,
        pair_events: bool) -> None:
    # PROCESSING waits for SENT so both land in the timeline in one write; a slow carrier does not
    # keep the customer from hearing PROCESSING for longer than the hold
    carrier = GatedCarrier()
    sink = Noting(tap.publisher, carrier)
    table = RoutingTable(routes={"gated": HttpRoute(url="http://127.0.0.1:9")}, default=["gated"])
    dispatcher = Dispatcher(
        Claims(db[DISPATCHES], "worker-a", 30.0), sink,
        Carriers(sandbox=carrier, routes={"gated": carrier}, table=table),
        DispatchConfig(dlr_callback_url="http://127.0.0.1:9/dlr", dlr_token="t",
                       retry_delays=[0.2], recheck_seconds=1.0, processing_hold=0.5,
                       pair_events=pair_events))
    cmd = command()
    handler = asyncio.create_task(dispatcher.dispatch(cmd))
    if carrier_answers_within_the_hold:
        await asyncio.sleep(0.1)
        assert sink.noted == []  # PROCESSING is held for the outcome
        carrier.release.set()
    else:
        await tap.wait_for(cmd.message_id, Status.PROCESSING, timeout=5)
        assert sink.noted == [(Status.PROCESSING, False)]  # out on its own, the carrier still busy
        carrier.release.set()
    await asyncio.wait_for(handler, 10)
    claim = await db[DISPATCHES].find_one({"_id": cmd.message_id})
    assert claim is not None
    # one message for the two when the outcome came within the hold (and pairs are on)
    await tap.expect_processing_then_sent(cmd.message_id, claim["created_at"],
                                          together=carrier_answers_within_the_hold and pair_events)
    assert sink.noted == [(Status.PROCESSING, carrier_answers_within_the_hold), (Status.SENT, True)]


async def test_a_handler_cancelled_during_the_submit_still_records_the_carriers_answer(
        tap: EventTap, db: AsyncDatabase[Document]) -> None:
    """A closing channel cancels the handler mid-submit (a broker restart); the submit and the record
    of its answer go on, so the redelivered command republishes SENT instead of submitting again."""
    carrier = GatedCarrier()
    table = RoutingTable(routes={"gated": HttpRoute(url="http://127.0.0.1:9")}, default=["gated"])
    dispatcher = Dispatcher(
        Claims(db[DISPATCHES], "worker-a", 0.0), tap.publisher,
        Carriers(sandbox=carrier, routes={"gated": carrier}, table=table),
        DispatchConfig(dlr_callback_url="http://127.0.0.1:9/dlr", dlr_token="t",
                       retry_delays=[0.2], recheck_seconds=1.0))
    cmd = command()
    handler = asyncio.create_task(dispatcher.dispatch(cmd))
    try:
        await tap.wait_for(cmd.message_id, Status.PROCESSING, timeout=5)  # held past the hold
        handler.cancel()
        with pytest.raises(asyncio.CancelledError):
            await handler
        carrier.release.set()
        await finish_detached(5)
        claim = await db[DISPATCHES].find_one({"_id": cmd.message_id})
        assert claim is not None and claim["state"] == "sent"
        sent = await tap.wait_for(cmd.message_id, Status.SENT)
        await dispatcher.dispatch(cmd)  # the redelivery; the lease (0 s) has long expired
        again = await tap.wait_for(cmd.message_id, Status.SENT, count=2)
    finally:
        carrier.release.set()
    assert carrier.submits == 1
    assert again.event_id == sent.event_id and again.provider_message_id == "gc-" + cmd.message_id
    assert not tap.of(cmd.message_id, Status.FAILED)
