"""The OTP lane: an OTP queued behind thousands of STANDARD messages reaches the SMSC first."""

from __future__ import annotations

import asyncio

from postwire_contracts import topology
from postwire_contracts.status import Status
from postwire_platform.broker import declare_topology
from postwire_sms_dispatcher.routes import RoutingTable, SmppRoute
from postwire_testing.smsc import SmscSimulator
from postwire_testing.taps import EventTap

from .sms_support import command, make_settings, running

BACKLOG = 3000


async def test_an_otp_behind_a_backlog_of_bulk_messages_reaches_the_smsc_first(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str) -> None:
    await declare_topology(tap.broker)
    bulk = [command(body=f"Newsletter {i}") for i in range(BACKLOG)]
    for start in range(0, BACKLOG, 250):
        await asyncio.gather(*(tap.publisher.publish(c, topology.SEND_SMS)
                               for c in bulk[start:start + 250]))
    otp = command(body="Your code is 774411", flow="OTP")
    await tap.publisher.publish(otp, topology.sms_send_key("OTP"))

    async with SmscSimulator(receipt_delay=0.05) as smsc:
        route = SmppRoute(host="127.0.0.1", port=smsc.port, system_id="postwire",
                          password="secret", reference_tlv=0x1400, window=10, throughput=400)
        settings = make_settings(amqp_url, mongodb_url, db_name,
                                 sms_routes=RoutingTable(routes={"a": route}, default=["a"]))
        async with running(settings):
            await smsc.wait_for(lambda s: s.count_for(otp.message_id) == 1, timeout=60,
                                what="the OTP submitted")
            [submitted] = smsc.of(otp.message_id)
            standard_before = submitted.index
            await smsc.wait_for(lambda s: s.submit_count >= 500, timeout=60, what="bulk going on")
            await tap.wait_for(otp.message_id, Status.DELIVERED)
    # FIFO would put it behind all 3,000; the lane and the gate put it among the first few dozen
    # (only what was already claimed when the dispatcher started can be ahead of it).
    assert standard_before < 150, standard_before
    assert submitted.esm_class == 0 and smsc.submits[0].reference is not None
