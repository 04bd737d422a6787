"""sms-dispatcher over SMPP against the local SMSC simulator (real TCP, real PDUs), real RabbitMQ and
SecantusDB: parts, receipts in and out of order, a bind dropped mid-load, failover, MO, rejections."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from faststream.rabbit import RabbitQueue

from postwire_contracts import topology
from postwire_contracts.messages import InboundEvent
from postwire_contracts.status import Status
from postwire_platform.broker import EXCHANGE, make_broker
from postwire_platform.clock import utcnow
from postwire_sms_dispatcher.routes import RoutingTable, SmppRoute
from postwire_testing.smsc import SmscSimulator, Submit
from postwire_testing.taps import EventTap

from .sms_support import command, make_settings, running

REF_TLV = 0x1400


def smpp_route(smsc: SmscSimulator, **kw: Any) -> SmppRoute:
    values: dict[str, Any] = {"host": "127.0.0.1", "port": smsc.port, "system_id": "postwire",
                              "password": "secret", "reference_tlv": REF_TLV, "window": 20,
                              "reconnect_min": 0.1, "reconnect_max": 0.5}
    values.update(kw)
    return SmppRoute(**values)


def table(*routes: tuple[str, SmppRoute]) -> RoutingTable:
    return RoutingTable(routes=dict(routes), default=[name for name, _ in routes])


@asynccontextmanager
async def dispatcher(amqp_url: str, mongodb_url: str, db_name: str, routes: RoutingTable,
                     **kw: Any) -> AsyncIterator[None]:
    settings = make_settings(amqp_url, mongodb_url, db_name, sms_routes=routes, **kw)
    async with running(settings) as app:
        for route in app.state.runtime.extras["smpp"]:
            assert await route.wait_bound(15), f"route {route.name} did not bind"
        yield


async def test_single_and_multipart_messages_are_delivered_once(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str) -> None:
    async with SmscSimulator(receipt_delay=0.02, receipt_order="reverse") as smsc, dispatcher(
            amqp_url, mongodb_url, db_name, table(("carrier-a", smpp_route(smsc)))):
        short = command(body="Your code is 123456")
        long_gsm = command(body="Long news with € and [brackets] " * 12)   # 3 parts of GSM-7
        unicode = command(body="Привет, это длинное сообщение. " * 4)       # 2 parts of UCS-2
        for cmd in (short, long_gsm, unicode):
            await tap.publisher.publish(cmd, topology.SEND_SMS)
        for cmd in (short, long_gsm, unicode):
            await tap.wait_for(cmd.message_id, Status.DELIVERED)

        [one] = smsc.of(short.message_id)
        assert (one.destination, one.source, one.udh, one.registered_delivery) == (
            short.to.lstrip("+"), "Postwire", None, 1)
        assert one.text == short.body and one.data_coding == 0
        sent = tap.of(short.message_id, Status.SENT)
        assert [e.provider_message_id for e in sent if e.source == "sms-dispatcher"] == [
            one.message_id]
        for cmd, parts, coding in ((long_gsm, 3, 0), (unicode, 2, 8)):
            submits = smsc.of(cmd.message_id)
            assert len(submits) == parts and {s.data_coding for s in submits} == {coding}
            assert [s.udh[1:] if s.udh else None for s in submits] == [
                (parts, n) for n in range(1, parts + 1)]
            assert len({s.udh[0] if s.udh else None for s in submits}) == 1
            if coding == 0:
                assert "".join(s.short_message[6:].decode("latin-1") for s in submits).count(
                    "\x1be") == 12   # € as escape + 0x65 in GSM-7
            else:
                assert "".join(s.text for s in submits) == cmd.body
            assert len(tap.of(cmd.message_id, Status.DELIVERED)) == 1
            dispatched = [e for e in tap.of(cmd.message_id, Status.SENT)
                          if e.source == "sms-dispatcher"]
            assert dispatched[0].detail == {"carrier": "carrier-a", "parts": parts}


async def test_multipart_is_delivered_only_when_every_part_is(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str) -> None:
    def stat(submit: Submit) -> str:
        return "" if submit.udh and submit.udh[2] == 2 else "DELIVRD"   # part 2 waits

    async with SmscSimulator(receipt_delay=0.01, stat_for=stat) as smsc, dispatcher(
            amqp_url, mongodb_url, db_name, table(("a", smpp_route(smsc)))):
        cmd = command(body="x" * 400)   # 3 parts
        await tap.publisher.publish(cmd, topology.SEND_SMS)
        await smsc.wait_for(lambda s: len(s.acked_receipts) == 2, what="two receipts acked")
        part_events = await _wait_part_events(tap, cmd.message_id, 2)
        assert {e.detail["part"] for e in part_events} == {1, 3}
        assert all(e.status is Status.SENT for e in part_events)
        assert not tap.of(cmd.message_id, Status.DELIVERED)

        second = smsc.of(cmd.message_id)[1]
        smsc.send_receipt(second.message_id, "DELIVRD")
        delivered = await tap.wait_for(cmd.message_id, Status.DELIVERED)
        assert delivered.source == "smpp-dlr" and delivered.detail["parts"] == 3

        failing = command(body="y" * 400)
        smsc.stat_for = lambda s: "UNDELIV" if s.udh and s.udh[2] == 3 else "DELIVRD"
        await tap.publisher.publish(failing, topology.SEND_SMS)
        failed = await tap.wait_for(failing.message_id, Status.FAILED)
        assert (failed.error_code, failed.detail["part"]) == ("UNDELIV", 3)
        assert not tap.of(failing.message_id, Status.DELIVERED)


async def _wait_part_events(tap: EventTap, message_id: str, count: int) -> list[Any]:
    for _ in range(500):
        found = [e for e in tap.of(message_id) if e.source == "smpp-dlr"]
        if len(found) >= count:
            return found
        await _sleep()
    raise TimeoutError(f"no {count} part receipts for {message_id}")


async def _sleep() -> None:
    await asyncio.sleep(0.02)


async def test_a_bind_dropped_mid_load_loses_nothing_and_sends_nothing_twice(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str) -> None:
    async with SmscSimulator(receipt_delay=0.05, receipt_order="shuffle") as smsc, dispatcher(
            amqp_url, mongodb_url, db_name,
            table(("a", smpp_route(smsc, binds=2, window=10))),
            sms_retry_delays=[0.2, 0.5, 1.0, 2.0]):
        commands = [command(body=f"msg {i} " + ("long " * 40 if i % 10 == 0 else ""))
                    for i in range(300)]
        smsc.drop_after(120)
        for cmd in commands:
            await tap.publisher.publish(cmd, topology.SEND_SMS)
        for cmd in commands:
            await tap.wait_for(cmd.message_id, Status.DELIVERED, timeout=90)

        assert smsc.binds >= 4   # both binds came back
        counts = smsc.counts()
        for i, cmd in enumerate(commands):
            assert counts[cmd.message_id] == (2 if i % 10 == 0 else 1), cmd.message_id
        assert not [e for e in tap.events if e.status is Status.FAILED]


async def test_failover_to_the_second_route_when_the_first_cannot_bind(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str) -> None:
    async with SmscSimulator() as down, SmscSimulator() as backup:
        down.refuse_binds = True
        routes = RoutingTable(routes={"primary": smpp_route(down), "backup": smpp_route(backup)},
                              default=["primary", "backup"])
        settings = make_settings(amqp_url, mongodb_url, db_name, sms_routes=routes)
        async with running(settings) as app:
            primary, second = app.state.runtime.extras["smpp"]
            assert await second.wait_bound(15) and not primary.up
            cmd = command()
            await tap.publisher.publish(cmd, topology.SEND_SMS)
            await tap.wait_for(cmd.message_id, Status.DELIVERED)
            assert backup.count_for(cmd.message_id) == 1 and down.submit_count == 0
            sent = [e for e in tap.of(cmd.message_id, Status.SENT) if e.source == "sms-dispatcher"]
            assert sent[0].detail == {"carrier": "backup"}

            down.refuse_binds = False
            assert await primary.wait_bound(15)
            again = command()
            await tap.publisher.publish(again, topology.SEND_SMS)
            await tap.wait_for(again.message_id, Status.DELIVERED)
            assert down.count_for(again.message_id) == 1


async def test_rejected_and_throttled_submits(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str) -> None:
    async with SmscSimulator(reject_numbers={"447700900999"}) as smsc, dispatcher(
            amqp_url, mongodb_url, db_name, table(("a", smpp_route(smsc)))):
        rejected = command("+447700900999")
        await tap.publisher.publish(rejected, topology.SEND_SMS)
        failed = await tap.wait_for(rejected.message_id, Status.FAILED)
        assert failed.error_code == "invalid_destination"

        smsc.throttle_next(2)
        throttled = command()
        await tap.publisher.publish(throttled, topology.SEND_SMS)
        await tap.wait_for(throttled.message_id, Status.DELIVERED)
        assert smsc.count_for(throttled.message_id) == 1
        assert [code for _, code in smsc.rejected] == [0x0B, 0x58, 0x58]


async def test_mo_messages_become_inbound_events_and_enquire_link_is_answered(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str) -> None:
    inbound: list[InboundEvent] = []
    broker = make_broker(amqp_url)
    queue = RabbitQueue(f"test.inbound.{uuid.uuid4().hex[:8]}", routing_key="event.inbound.#",
                        auto_delete=True)

    @broker.subscriber(queue, EXCHANGE)
    async def collect(event: InboundEvent) -> None:
        inbound.append(event)

    await broker.start()
    try:
        async with SmscSimulator(enquire_link_interval=0.2) as smsc, dispatcher(
                amqp_url, mongodb_url, db_name, table(("a", smpp_route(smsc)))):
            assert await smsc.send_mo("447700900123", "Postwire", "STOP") == 0
            assert await smsc.send_mo("447700900124", "Postwire", "Стоп", data_coding=8) == 0
            for _ in range(500):
                if len(inbound) == 2:
                    break
                await _sleep()
            stop, unicode = sorted(inbound, key=lambda e: e.sender)
            assert (stop.sender, stop.recipient, stop.body, stop.channel.value) == (
                "+447700900123", "Postwire", "STOP", "sms")
            assert unicode.body == "Стоп"
            await smsc.wait_for(lambda s: s.enquire_link_answers >= 2, what="enquire_link answered")
    finally:
        await broker.stop()


@pytest.mark.parametrize("flow", ["OTP", "STANDARD"])
async def test_an_expired_message_is_never_submitted(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str, flow: str) -> None:
    async with SmscSimulator() as smsc, dispatcher(
            amqp_url, mongodb_url, db_name, table(("a", smpp_route(smsc)))):
        cmd = command(flow=flow, expires_at=utcnow() - timedelta(seconds=1))
        await tap.publisher.publish(cmd, topology.sms_send_key(flow))
        failed = await tap.wait_for(cmd.message_id, Status.FAILED)
        assert failed.error_code == "expired" and smsc.submit_count == 0


async def test_instant_receipts_name_their_message_and_follow_its_sent_event(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str) -> None:
    # a carrier that answers the receipt at once: it reaches the dispatcher before the outcome of the
    # submit is written, and is matched in memory (no dispatches lookup, no wait for the write)
    async with SmscSimulator(receipt_delay=0.0) as smsc, dispatcher(
            amqp_url, mongodb_url, db_name, table(("carrier-a", smpp_route(smsc, window=50)))):
        commands = [command(body=f"code {i:06d}") for i in range(40)]
        await asyncio.gather(*(tap.publisher.publish(c, topology.SEND_SMS) for c in commands))
        for cmd in commands:
            await tap.wait_for(cmd.message_id, Status.DELIVERED, timeout=60)
        for cmd in commands:
            assert smsc.count_for(cmd.message_id) == 1
            statuses = [e.status for e in tap.of(cmd.message_id)]
            assert statuses.index(Status.SENT) < statuses.index(Status.DELIVERED), statuses
            [delivered] = tap.of(cmd.message_id, Status.DELIVERED)
            [sent] = [e for e in tap.of(cmd.message_id, Status.SENT) if e.source == "sms-dispatcher"]
            assert delivered.tenant_id == cmd.tenant_id
            assert delivered.provider_message_id == sent.provider_message_id
