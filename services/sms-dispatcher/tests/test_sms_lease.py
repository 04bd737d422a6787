"""The claim's lease fences each submit (real SecantusDB; SMPP against the local SMSC simulator, HTTP
against the fake carrier; the dispatcher driven directly, with a clock the test moves by hand)."""

from __future__ import annotations

import asyncio
from typing import Any

import smpp34
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts.status import Status
from postwire_platform.mongo import DISPATCHES, Document
from postwire_sms_dispatcher.carrier import HttpCarrier, SmsCarrier
from postwire_sms_dispatcher.claims import Claims
from postwire_sms_dispatcher.dispatch import Carriers, DispatchConfig, Dispatcher
from postwire_sms_dispatcher.gate import STANDARD, PriorityGate
from postwire_sms_dispatcher.routes import HttpRoute, RoutingTable, SmppRoute
from postwire_sms_dispatcher.smpp import SmppCarrier
from postwire_testing.doubles import HandClock, KeptEvents
from postwire_testing.fake_carrier import FakeCarrier
from postwire_testing.mongo_commands import CollectionCommands, watched
from postwire_testing.smsc import SmscSimulator

from .sms_support import command

LEASE = 3.0
"""The fault suite's lease."""


class CountingClaims(Claims):
    """Claims that count their releases."""

    releases = 0

    async def release(self, *args: Any) -> None:
        self.releases += 1
        await super().release(*args)


class HeldGate(PriorityGate):
    """A bind's window and throughput gate whose first admission waits for ``go``: a submit queued
    behind a full window or a carrier's slow contracted rate."""

    def __init__(self, window: int, rate: float | None = None) -> None:
        super().__init__(window, rate)
        self.held, self.go = asyncio.Event(), asyncio.Event()
        self._first = True

    async def acquire(self, priority: int = STANDARD) -> None:
        if self._first:
            self._first = False
            self.held.set()
            await self.go.wait()
        await super().acquire(priority)


def config() -> DispatchConfig:
    # PROCESSING waits for the outcome (no hold expiring while the test holds a handler)
    return DispatchConfig(dlr_callback_url="http://127.0.0.1:9/dlr", dlr_token="t",
                          retry_delays=[0.2], recheck_seconds=LEASE, processing_hold=30.0)


def one_route(name: str, route: SmppRoute | HttpRoute, carrier: SmsCarrier) -> Carriers:
    return Carriers(sandbox=carrier, routes={name: carrier},
                    table=RoutingTable(routes={name: route}, default=[name]))


async def _no_receipts(route: str, event: smpp34.DeliverSmEvent) -> None:
    return None


async def test_a_submit_stalled_in_the_window_past_its_lease_is_not_made_once_another_took_over(
        db: AsyncDatabase[Document]) -> None:
    """X waits for a slot of the bind's window until its lease has run out; Y, a second delivery of
    the same message in the same process (a redelivery, the gateway's republish), takes the claim
    over and submits. When X gets its slot, its lease check finds the claim another's: X submits
    nothing and ends without a release, a retry or a status event."""
    clock = HandClock()
    events = KeptEvents()
    async with SmscSimulator(receipt_delay=0.05) as smsc:
        route = SmppRoute(host="127.0.0.1", port=smsc.port, system_id="postwire",
                          password="secret", reference_tlv=0x1400, reconnect_min=0.1)
        carrier = SmppCarrier("a", route, _no_receipts, clock=clock)
        gate = carrier.binds[0].gate = HeldGate(route.window, route.throughput)
        carrier.start()
        try:
            assert await carrier.wait_bound(15)
            claims = CountingClaims(db[DISPATCHES], "worker-a", LEASE)
            dispatcher = Dispatcher(claims, events, one_route("a", route, carrier), config(),
                                    clock)
            cmd = command()
            x = asyncio.create_task(dispatcher.dispatch(cmd))
            await asyncio.wait_for(gate.held.wait(), 10)
            clock.advance(LEASE + 1)  # X's lease has run out
            await asyncio.wait_for(dispatcher.dispatch(cmd), 10)  # Y takes over and submits
            assert smsc.count_for(cmd.message_id) == 1
            gate.go.set()
            await asyncio.wait_for(x, 10)
        finally:
            gate.go.set()
            await carrier.aclose()
    assert smsc.count_for(cmd.message_id) == 1
    assert claims.releases == 0 and events.delayed == []
    claim = await db[DISPATCHES].find_one({"_id": cmd.message_id})
    assert claim is not None and claim["state"] == "sent" and claim["attempts"] == 2
    assert [e.status for e in events.events] == [Status.PROCESSING, Status.SENT]


WRITES = ("insert", "update", "findAndModify", "delete")


def writes(commands: CollectionCommands) -> list[tuple[str, list[dict[str, Any]]]]:
    """The write commands sent to ``dispatches``, with their update filters."""
    out: list[tuple[str, list[dict[str, Any]]]] = []
    for name, sent in zip(commands.names, commands.commands, strict=True):
        if name in WRITES:
            filters = ([dict(sent["query"])] if name == "findAndModify"
                       else [dict(u["q"]) for u in sent.get("updates", [])])
            out.append((name, filters))
    return out


class SlowAnswer(HttpCarrier):
    """An HTTP carrier whose answer comes back only on ``go``: the carrier has the message
    (``taken``) and its answer is not recorded yet."""

    def __init__(self, url: str) -> None:
        super().__init__(url, "tok")
        self.taken, self.go = asyncio.Event(), asyncio.Event()

    async def submit(self, request: Any) -> Any:
        result = await super().submit(request)
        self.taken.set()
        await self.go.wait()
        return result


class LateOptOut:
    """The first lookup is answered on ``answer``, with "opted out" (the recipient sent STOP
    meanwhile); later ones at once, with "not opted out"."""

    def __init__(self) -> None:
        self.asked, self.answer = asyncio.Event(), asyncio.Event()

    async def opted_out(self, tenant_id: str, address: str) -> bool:
        if self.asked.is_set():
            return False
        self.asked.set()
        await self.answer.wait()
        return True


async def test_a_failure_decided_after_a_take_over_does_not_stand_over_the_submit_of_the_taker(
        db: AsyncDatabase[Document]) -> None:
    """X's opt-out lookup takes longer than its lease; Y takes the claim over and the carrier has
    Y's submit, whose answer is still on its way, when X's lookup says "opted out". X's FAILED is
    X's own decision, so it is recorded only under X's lease: X stops, and the message ends SENT
    (before, X recorded FAILED first and Y's SENT was lost under it)."""
    clock = HandClock()
    events = KeptEvents()
    opt_outs = LateOptOut()
    async with FakeCarrier(dlr_stat=None) as fake:
        http = SlowAnswer(fake.url)
        try:
            dispatcher = Dispatcher(Claims(db[DISPATCHES], "worker-a", LEASE), events,
                                    one_route("http", HttpRoute(url=fake.url), http), config(),
                                    clock, opt_outs=opt_outs)
            cmd = command()
            x = asyncio.create_task(dispatcher.dispatch(cmd))
            await asyncio.wait_for(opt_outs.asked.wait(), 10)
            clock.advance(LEASE + 1)  # X's lease has run out
            y = asyncio.create_task(dispatcher.dispatch(cmd))
            await asyncio.wait_for(http.taken.wait(), 10)  # Y's submit is at the carrier
            opt_outs.answer.set()
            await asyncio.wait_for(x, 10)
            http.go.set()
            await asyncio.wait_for(y, 10)
        finally:
            http.go.set()
            opt_outs.answer.set()
            await http.aclose()
        assert fake.count_for(cmd.message_id) == 1
    claim = await db[DISPATCHES].find_one({"_id": cmd.message_id})
    assert claim is not None and claim["state"] == "sent" and "error_code" not in claim
    assert [e.status for e in events.events] == [Status.PROCESSING, Status.SENT]


class AdvancingOptOuts:
    """No opt-outs; the lookup moves the clock on by ``seconds`` (a slow database, say)."""

    def __init__(self, clock: HandClock, seconds: float) -> None:
        self.clock = clock
        self.seconds = seconds

    async def opted_out(self, tenant_id: str, address: str) -> bool:
        self.clock.advance(self.seconds)
        return False


async def _dispatch_once_over_http(mongodb_url: str, db: AsyncDatabase[Document],
                                   elapsed: float) -> tuple[CollectionCommands, str]:
    """One message over the HTTP carrier, ``elapsed`` seconds of the lease gone before its submit;
    the writes to ``dispatches`` and the message id."""
    clock = HandClock()
    async with watched(mongodb_url, db.name, DISPATCHES) as (dispatches, commands), \
            FakeCarrier(dlr_stat=None) as fake:
        http = HttpCarrier(fake.url, "tok")
        try:
            dispatcher = Dispatcher(
                Claims(dispatches, "worker-a", LEASE), KeptEvents(),
                one_route("http", HttpRoute(url=fake.url), http), config(), clock,
                opt_outs=AdvancingOptOuts(clock, elapsed))
            cmd = command()
            await dispatcher.dispatch(cmd)
        finally:
            await http.aclose()
        assert fake.count_for(cmd.message_id) == 1
    return commands, cmd.message_id


async def test_a_submit_under_a_live_lease_adds_no_database_write(
        mongodb_url: str, db: AsyncDatabase[Document]) -> None:
    """The lease check costs nothing while the lease is comfortably valid: the claim and the outcome
    are the only writes (each group-committed)."""
    commands, _ = await _dispatch_once_over_http(mongodb_url, db, elapsed=0.5)
    assert [name for name, _ in writes(commands)] == ["insert", "update"]


async def test_a_lease_close_to_its_end_is_renewed_once_before_the_submit(
        mongodb_url: str, db: AsyncDatabase[Document]) -> None:
    commands, message_id = await _dispatch_once_over_http(mongodb_url, db, elapsed=LEASE * 0.8)
    made = writes(commands)
    assert [name for name, _ in made] == ["insert", "update", "update"]
    [renewal] = made[1][1]
    assert renewal["_id"] == message_id and renewal["state"] == "processing"
    assert renewal["owner"].startswith("worker-a:")  # this acquisition's own token
    claim = await db[DISPATCHES].find_one({"_id": message_id})
    assert claim is not None and claim["state"] == "sent"
