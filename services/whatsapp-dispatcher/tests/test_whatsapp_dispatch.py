"""whatsapp-dispatcher against the real broker, SecantusDB and a local fake Graph API."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts import topology
from postwire_contracts.status import Status
from postwire_platform.broker import Publisher
from postwire_platform.clock import utcnow
from postwire_platform.mongo import OPT_OUTS, TENANTS, WHATSAPP_DISPATCHES, Document
from postwire_platform.opt_outs import OptOutLookups
from postwire_platform.uncancellable import finish_detached
from postwire_testing.doubles import HandClock, KeptEvents
from postwire_testing.fake_graph import FakeGraph
from postwire_testing.taps import EventTap
from postwire_whatsapp.numbers import wa_id
from postwire_whatsapp_dispatcher.claims import Claims
from postwire_whatsapp_dispatcher.dispatch import Clients, DispatchConfig, Dispatcher
from postwire_whatsapp_dispatcher.graph import GraphClient, GraphSend, SendResult
from postwire_whatsapp_dispatcher.lines import LineResolver, PlatformLine
from postwire_whatsapp_dispatcher.pacing import Pacer, Rate
from postwire_whatsapp_dispatcher.settings import Settings

from .whatsapp_support import (
    PLATFORM_PHONE,
    PLATFORM_TOKEN,
    command,
    give_line,
    make_settings,
    running,
    template,
)


async def test_text_and_template_reach_graph_with_the_right_body_and_token(
        tap: EventTap, graph: FakeGraph, amqp_url: str, mongodb_url: str, db_name: str) -> None:
    graph.tokens[PLATFORM_PHONE] = PLATFORM_TOKEN
    settings = make_settings(amqp_url, mongodb_url, db_name, graph.url)
    text = command("+14155552671", text="Hi Ada")
    tpl = command("+14155552672", text=None, template=template("order_update", "en_US", "#12345"))
    async with running(settings):
        for cmd in (text, tpl):
            await tap.publisher.publish(cmd, topology.SEND_WHATSAPP)
        sent_text = await tap.wait_for(text.message_id, Status.SENT)
        sent_tpl = await tap.wait_for(tpl.message_id, Status.SENT)

    [req_text] = graph.requests_to("14155552671")
    [req_tpl] = graph.requests_to("14155552672")
    assert req_text.path == f"/v23.0/{PLATFORM_PHONE}/messages" and req_text.token == PLATFORM_TOKEN
    assert req_text.body == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": "14155552671",
        "type": "text", "text": {"preview_url": False, "body": "Hi Ada"},
        "biz_opaque_callback_data": text.message_id}
    assert req_tpl.token == PLATFORM_TOKEN and req_tpl.phone_number_id == PLATFORM_PHONE
    assert req_tpl.body == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": "14155552672",
        "type": "template", "biz_opaque_callback_data": tpl.message_id,
        "template": {"name": "order_update", "language": {"code": "en_US"},
                     "components": [{"type": "body", "parameters": [
                         {"type": "text", "text": "#12345"}]}]}}
    [accepted_text] = graph.sent_to("14155552671")
    assert sent_text.provider_message_id == accepted_text.wamid
    assert sent_text.detail == {"line": "platform", "phone_number_id": PLATFORM_PHONE,
                                "wa_id": "14155552671"}
    assert sent_tpl.provider_message_id == graph.sent_to("14155552672")[0].wamid
    assert tap.of(text.message_id, Status.PROCESSING)


async def test_a_tenant_override_uses_the_tenants_line_and_token(
        tap: EventTap, graph: FakeGraph, amqp_url: str, mongodb_url: str, db_name: str,
        db: AsyncDatabase[Document]) -> None:
    graph.tokens["200000000000001"] = "EAAG-tenant-token"
    await give_line(db, "ten_own", "200000000000001", "EAAG-tenant-token")
    await give_line(db, "ten_borrow", "200000000000002", None)  # own number, platform token
    settings = make_settings(amqp_url, mongodb_url, db_name, graph.url)
    own = command("+14155552671", tenant_id="ten_own")
    borrow = command("+14155552672", tenant_id="ten_borrow")
    default = command("+14155552673", tenant_id="ten_nothing")
    async with running(settings):
        for cmd in (own, borrow, default):
            await tap.publisher.publish(cmd, topology.SEND_WHATSAPP)
        for cmd in (own, borrow, default):
            await tap.wait_for(cmd.message_id, Status.SENT)
    [r_own] = graph.requests_to("14155552671")
    [r_borrow] = graph.requests_to("14155552672")
    [r_default] = graph.requests_to("14155552673")
    assert (r_own.phone_number_id, r_own.token) == ("200000000000001", "EAAG-tenant-token")
    assert (r_borrow.phone_number_id, r_borrow.token) == ("200000000000002", PLATFORM_TOKEN)
    assert (r_default.phone_number_id, r_default.token) == (PLATFORM_PHONE, PLATFORM_TOKEN)
    assert tap.of(own.message_id, Status.SENT)[0].detail["line"] == "tenant"


async def test_131047_ends_failed_with_the_reason_and_is_not_retried(
        tap: EventTap, graph: FakeGraph, amqp_url: str, mongodb_url: str, db_name: str) -> None:
    graph.fail_recipient("14155552671", 131047)
    graph.fail_recipient("14155552672", 132001)
    settings = make_settings(amqp_url, mongodb_url, db_name, graph.url)
    outside, no_template = command("+14155552671"), command(
        "+14155552672", text=None, template=template("nope"))
    async with running(settings):
        await tap.publisher.publish(outside, topology.SEND_WHATSAPP)
        await tap.publisher.publish(no_template, topology.SEND_WHATSAPP)
        failed = await tap.wait_for(outside.message_id, Status.FAILED)
        missing = await tap.wait_for(no_template.message_id, Status.FAILED)
    assert failed.error_code == "131047"
    assert failed.error_reason is not None
    assert failed.error_reason.startswith("more than 24 hours since the recipient last wrote")
    assert "More than 24 hours have passed" in failed.error_reason  # Meta's own details
    assert failed.detail["graph_error"]["code"] == 131047
    assert missing.error_code == "132001" and "template" in (missing.error_reason or "")
    assert len(graph.requests_to("14155552671")) == 1 and not tap.of(outside.message_id, Status.SENT)


async def test_throttling_130429_and_network_errors_are_retried(
        tap: EventTap, graph: FakeGraph, amqp_url: str, mongodb_url: str, db_name: str) -> None:
    graph.fail_recipient("14155552671", 130429, times=1)
    graph.fail_recipient("14155552672", 131056, times=1)
    settings = make_settings(amqp_url, mongodb_url, db_name, graph.url,
                             whatsapp_rate_per_recipient=100.0)
    throttled, pair = command("+14155552671"), command("+14155552672")
    async with running(settings):
        await tap.publisher.publish(throttled, topology.SEND_WHATSAPP)
        await tap.publisher.publish(pair, topology.SEND_WHATSAPP)
        sent = await tap.wait_for(throttled.message_id, Status.SENT)
        await tap.wait_for(pair.message_id, Status.SENT)
        graph.fail_next(1, status=502)
        flaky = command("+14155552673")
        await tap.publisher.publish(flaky, topology.SEND_WHATSAPP)
        await tap.wait_for(flaky.message_id, Status.SENT)
    assert len(graph.requests_to("14155552671")) == 2
    assert len(graph.sent_to("14155552671")) == 1
    assert sent.provider_message_id == graph.sent_to("14155552671")[0].wamid
    assert len(graph.requests_to("14155552672")) == 2
    assert len(graph.requests_to("14155552673")) == 2 and len(graph.sent_to("14155552673")) == 1
    assert len(tap.of(throttled.message_id, Status.SENT)) == 1


async def test_retries_run_out_and_the_message_fails(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str) -> None:
    async with FakeGraph() as graph:
        graph.fail_next(10, status=503)
        settings = make_settings(amqp_url, mongodb_url, db_name, graph.url)
        cmd = command()
        async with running(settings):
            await tap.publisher.publish(cmd, topology.SEND_WHATSAPP)
            failed = await tap.wait_for(cmd.message_id, Status.FAILED)
    assert failed.error_code == "retries_exhausted" and "3 attempts" in (failed.error_reason or "")
    assert len(graph.requests) == 3


async def test_190_fails_and_flags_the_tenants_line_until_it_is_replaced(
        tap: EventTap, graph: FakeGraph, amqp_url: str, mongodb_url: str, db_name: str,
        db: AsyncDatabase[Document]) -> None:
    graph.tokens["200000000000001"] = "EAAG-new-token"
    await give_line(db, "ten_own", "200000000000001", "EAAG-expired")
    settings = make_settings(amqp_url, mongodb_url, db_name, graph.url)
    first, second = command(tenant_id="ten_own"), command(tenant_id="ten_own")
    async with running(settings):
        await tap.publisher.publish(first, topology.SEND_WHATSAPP)
        failed = await tap.wait_for(first.message_id, Status.FAILED)
        tenant = await db[TENANTS].find_one({"_id": "ten_own"})
        assert tenant is not None and tenant["whatsapp_line"]["needs_attention"] is True
        await tap.publisher.publish(second, topology.SEND_WHATSAPP)
        blocked = await tap.wait_for(second.message_id, Status.FAILED)
    assert failed.error_code == "190" and "access token" in (failed.error_reason or "")
    assert blocked.error_code == "line_needs_attention"
    assert len(graph.requests) == 1


async def test_an_opted_out_recipient_gets_nothing(
        tap: EventTap, graph: FakeGraph, amqp_url: str, mongodb_url: str, db_name: str,
        db: AsyncDatabase[Document]) -> None:
    await db[OPT_OUTS].insert_one({"_id": "oo_1", "tenant_id": "ten_test", "channel": "whatsapp",
                                   "address": "14155552671", "source": "whatsapp",
                                   "keyword": "STOP", "created_at": utcnow()})
    settings = make_settings(amqp_url, mongodb_url, db_name, graph.url)
    blocked = command("+14155552671")
    other_tenant = command("+14155552671", tenant_id="ten_other")
    async with running(settings):
        await tap.publisher.publish(blocked, topology.SEND_WHATSAPP)
        await tap.publisher.publish(other_tenant, topology.SEND_WHATSAPP)
        failed = await tap.wait_for(blocked.message_id, Status.FAILED)
        await tap.wait_for(other_tenant.message_id, Status.SENT)
    assert failed.error_code == "opted_out"
    assert [r.body["biz_opaque_callback_data"] for r in graph.requests] == [other_tenant.message_id]


async def test_disabled_channel_fails_every_command(
        tap: EventTap, graph: FakeGraph, amqp_url: str, mongodb_url: str, db_name: str) -> None:
    settings = make_settings(amqp_url, mongodb_url, db_name, graph.url,
                             whatsapp_cloud_api_enabled=False)
    cmd = command()
    async with running(settings):
        await tap.publisher.publish(cmd, topology.SEND_WHATSAPP)
        failed = await tap.wait_for(cmd.message_id, Status.FAILED)
    assert failed.error_code == "whatsapp_disabled" and not graph.requests


async def test_a_redelivered_command_is_sent_once(
        tap: EventTap, graph: FakeGraph, amqp_url: str, mongodb_url: str, db_name: str) -> None:
    settings = make_settings(amqp_url, mongodb_url, db_name, graph.url)
    cmd = command()
    async with running(settings):
        await tap.publisher.publish(cmd, topology.SEND_WHATSAPP)
        first = await tap.wait_for(cmd.message_id, Status.SENT)
        await tap.publisher.publish(cmd, topology.SEND_WHATSAPP)
        again = await tap.wait_for(cmd.message_id, Status.SENT, count=2)
    assert len(graph.requests) == 1
    assert again.event_id == first.event_id and again.provider_message_id == first.provider_message_id


async def test_a_call_cut_short_by_a_crash_is_not_repeated(
        tap: EventTap, graph: FakeGraph, amqp_url: str, mongodb_url: str, db_name: str,
        db: AsyncDatabase[Document]) -> None:
    cmd = command()
    long_ago = utcnow() - timedelta(minutes=5)
    await db[WHATSAPP_DISPATCHES].insert_one({
        "_id": cmd.message_id, "state": "processing", "owner": "dead-worker", "attempts": 1,
        "lease_until": long_ago, "call_started_at": long_ago, "created_at": long_ago,
        "updated_at": long_ago})
    settings = make_settings(amqp_url, mongodb_url, db_name, graph.url)
    async with running(settings):
        await tap.publisher.publish(cmd, topology.SEND_WHATSAPP)
        failed = await tap.wait_for(cmd.message_id, Status.FAILED)
    assert failed.error_code == "outcome_unknown" and not graph.requests


async def test_sends_to_one_recipient_are_paced_through_the_delay_queue(
        tap: EventTap, graph: FakeGraph, amqp_url: str, mongodb_url: str, db_name: str,
        db: AsyncDatabase[Document]) -> None:
    settings = make_settings(amqp_url, mongodb_url, db_name, graph.url,
                             whatsapp_rate_per_recipient=0.25, whatsapp_burst_per_recipient=1,
                             whatsapp_pacing_max_wait=0.0)
    first, second = command("+14155552671"), command("+14155552671")
    async with running(settings):
        await tap.publisher.publish(first, topology.SEND_WHATSAPP)
        await tap.wait_for(first.message_id, Status.SENT)
        await tap.publisher.publish(second, topology.SEND_WHATSAPP)
        await tap.wait_for(second.message_id, Status.SENT, timeout=30)
    claim = await db[WHATSAPP_DISPATCHES].find_one({"_id": second.message_id})
    assert claim is not None and claim["last_note"].startswith("paced")
    assert claim["attempts"] >= 2
    assert [r.body["biz_opaque_callback_data"] for r in graph.requests] == [
        first.message_id, second.message_id]


class GatedGraph:
    """The real Graph client, held at the door until the test lets the call through."""

    def __init__(self, inner: GraphClient) -> None:
        self.inner = inner
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def send(self, request: GraphSend) -> SendResult:
        self.entered.set()
        await self.gate.wait()
        return await self.inner.send(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def gated_dispatcher(db: AsyncDatabase[Document], settings: Settings, gated: GatedGraph,
                     sink: Publisher, **config: Any) -> Dispatcher:
    """The dispatcher driven directly, every call through ``gated``, events to ``sink``."""
    return Dispatcher(
        Claims(db[WHATSAPP_DISPATCHES], "worker-a", settings.dispatch_lease_seconds), sink,
        Clients(live=gated, sandbox=gated),
        LineResolver(db, settings.check(), PlatformLine(PLATFORM_PHONE, PLATFORM_TOKEN), ttl=0.0),
        OptOutLookups(db[OPT_OUTS], "whatsapp"),
        Pacer(Rate(80, 80), Rate(1, 10), max_wait=1.0, max_waiting=10),
        DispatchConfig(enabled=True, retry_delays=[0.2], pacing_delays=[0.5],
                       recheck_seconds=settings.dispatch_lease_seconds, recipient_interval=0.1,
                       **config))


async def test_a_handler_cancelled_during_the_call_still_records_metas_answer(
        tap: EventTap, graph: FakeGraph, amqp_url: str, mongodb_url: str, db_name: str,
        db: AsyncDatabase[Document]) -> None:
    """A closing channel cancels the handler; the call in flight goes on and its answer is kept, so
    the redelivered command republishes SENT instead of giving the message up as outcome_unknown."""
    settings = make_settings(amqp_url, mongodb_url, db_name, graph.url)
    gated = GatedGraph(GraphClient(graph.url, settings.whatsapp_graph_version, timeout=5.0))
    dispatcher = gated_dispatcher(db, settings, gated, tap.publisher)
    cmd = command()
    handler = asyncio.create_task(dispatcher.dispatch(cmd))
    try:
        await asyncio.wait_for(gated.entered.wait(), 10)
        handler.cancel()
        with pytest.raises(asyncio.CancelledError):
            await handler
        gated.gate.set()
        sent = await tap.wait_for(cmd.message_id, Status.SENT)
        await finish_detached(5)
        claim = await db[WHATSAPP_DISPATCHES].find_one({"_id": cmd.message_id})
        assert claim is not None and claim["state"] == "sent"
        assert claim["provider_message_id"] == sent.provider_message_id == graph.accepted[0].wamid
        await dispatcher.dispatch(cmd)  # the redelivery
        again = await tap.wait_for(cmd.message_id, Status.SENT, count=2)
    finally:
        gated.gate.set()
        await gated.aclose()
    assert again.event_id == sent.event_id and len(graph.requests) == 1
    assert not tap.of(cmd.message_id, Status.FAILED)


class StalledClaims(Claims):
    """Claims whose first call mark waits for ``go`` before it is written; releases are counted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.marking, self.go = asyncio.Event(), asyncio.Event()
        self.marks = self.releases = 0

    async def calling(self, *args: Any) -> None:
        self.marks += 1
        if self.marks == 1:
            self.marking.set()
            await self.go.wait()
        await super().calling(*args)

    async def release(self, *args: Any) -> None:
        self.releases += 1
        await super().release(*args)


async def test_a_handler_stalled_past_its_lease_calls_nothing_once_another_took_over(
        graph: FakeGraph, db: AsyncDatabase[Document], amqp_url: str, mongodb_url: str,
        db_name: str) -> None:
    """X stalls right before its call mark (a slow MongoDB, pacing) until its lease has run out; Y,
    a second delivery of the same message in the same process, takes the claim over and sends. X's
    mark then finds that the claim is no longer its own acquisition's: X ends without a call to
    Meta, without a release and without a retry, and its PROCESSING, still held for an outcome (a
    long hold here), is Y's to announce."""
    settings = make_settings(amqp_url, mongodb_url, db_name, graph.url)
    clock = HandClock()
    events = KeptEvents()
    claims = StalledClaims(db[WHATSAPP_DISPATCHES], "worker-a", 3.0)
    client = GraphClient(graph.url, settings.whatsapp_graph_version, timeout=5.0)
    dispatcher = Dispatcher(
        claims, events, Clients(live=client, sandbox=client),
        LineResolver(db, settings.check(), PlatformLine(PLATFORM_PHONE, PLATFORM_TOKEN), ttl=0.0),
        OptOutLookups(db[OPT_OUTS], "whatsapp"),
        Pacer(Rate(80, 80), Rate(1, 10), max_wait=1.0, max_waiting=10),
        DispatchConfig(enabled=True, retry_delays=[0.2], pacing_delays=[0.5],
                       recheck_seconds=3.0, recipient_interval=0.1, processing_hold=30.0), clock)
    cmd = command()
    x = asyncio.create_task(dispatcher.dispatch(cmd))
    try:
        await asyncio.wait_for(claims.marking.wait(), 10)
        clock.advance(4)  # X's lease has run out
        await asyncio.wait_for(dispatcher.dispatch(cmd), 10)  # Y takes over and sends
        assert len(graph.requests) == 1
        claims.go.set()
        await asyncio.wait_for(x, 10)
    finally:
        claims.go.set()
        await client.aclose()
    assert len(graph.requests) == 1
    assert claims.releases == 0 and events.delayed == []
    claim = await db[WHATSAPP_DISPATCHES].find_one({"_id": cmd.message_id})
    assert claim is not None and claim["state"] == "sent" and claim["attempts"] == 2
    assert claim["provider_message_id"] == graph.accepted[0].wamid
    assert [e.status for e in events.events] == [Status.PROCESSING, Status.SENT]
    assert len(events.messages) == 1  # Y's PROCESSING and SENT together


class AnswerHeld(GatedGraph):
    """The real Graph client whose answer is held: Meta has the message (``entered``) and the
    answer comes back to the dispatcher only when the test lets it through."""

    async def send(self, request: GraphSend) -> SendResult:
        result = await self.inner.send(request)
        self.entered.set()
        await self.gate.wait()
        return result



class FirstLookupHeld(OptOutLookups):
    """Opt-out lookups whose first waits for ``go`` before it reads (``held`` is set once it waits)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.held, self.go = asyncio.Event(), asyncio.Event()

    async def opted_out(self, tenant_id: str, address: str) -> bool:
        if not self.held.is_set():
            self.held.set()
            await self.go.wait()
        return await super().opted_out(tenant_id, address)


async def test_a_failure_decided_after_a_take_over_does_not_stand_over_the_call_of_the_taker(
        graph: FakeGraph, db: AsyncDatabase[Document], amqp_url: str, mongodb_url: str,
        db_name: str) -> None:
    """X stalls before its checks until its lease has run out; Y takes the claim over and Meta has
    Y's message, its answer still on the way, when X finds that the recipient has opted out
    meanwhile. That FAILED is X's own decision, recorded only under X's lease: X stops and the
    message ends SENT (before, X's FAILED was recorded first and Y's SENT lost under it)."""
    settings = make_settings(amqp_url, mongodb_url, db_name, graph.url)
    clock = HandClock()
    events = KeptEvents()
    opt_outs = FirstLookupHeld(db[OPT_OUTS], "whatsapp")
    held = AnswerHeld(GraphClient(graph.url, settings.whatsapp_graph_version, timeout=5.0))
    dispatcher = Dispatcher(
        Claims(db[WHATSAPP_DISPATCHES], "worker-a", 3.0), events, Clients(live=held, sandbox=held),
        LineResolver(db, settings.check(), PlatformLine(PLATFORM_PHONE, PLATFORM_TOKEN), ttl=0.0),
        opt_outs, Pacer(Rate(80, 80), Rate(1, 10), max_wait=1.0, max_waiting=10),
        DispatchConfig(enabled=True, retry_delays=[0.2], pacing_delays=[0.5],
                       recheck_seconds=3.0, recipient_interval=0.1, processing_hold=30.0), clock)
    cmd = command()
    x = asyncio.create_task(dispatcher.dispatch(cmd))
    try:
        await asyncio.wait_for(opt_outs.held.wait(), 10)  # X, before its checks
        async with asyncio.timeout(10):  # and X holds the claim
            while await db[WHATSAPP_DISPATCHES].find_one({"_id": cmd.message_id}) is None:
                await asyncio.sleep(0.01)
        clock.advance(4)  # X's lease has run out
        y = asyncio.create_task(dispatcher.dispatch(cmd))
        await asyncio.wait_for(held.entered.wait(), 10)  # Meta has Y's message
        await db[OPT_OUTS].insert_one({"tenant_id": cmd.tenant_id, "channel": "whatsapp",
                                       "address": wa_id(cmd.to), "keyword": "STOP"})
        opt_outs.go.set()
        await asyncio.wait_for(x, 10)
        held.gate.set()
        await asyncio.wait_for(y, 10)
    finally:
        opt_outs.go.set()
        held.gate.set()
        await held.aclose()
    assert len(graph.requests) == 1
    claim = await db[WHATSAPP_DISPATCHES].find_one({"_id": cmd.message_id})
    assert claim is not None and claim["state"] == "sent" and "error_code" not in claim
    assert [e.status for e in events.events] == [Status.PROCESSING, Status.SENT]


@pytest.mark.parametrize(("graph_answers_within_the_hold", "pair_events"),
                         [(True, True), (False, True), (True, False)])
async def test_processing_goes_out_with_the_outcome_unless_graph_is_slow(
        tap: EventTap, graph: FakeGraph, amqp_url: str, mongodb_url: str, db_name: str,
        db: AsyncDatabase[Document], graph_answers_within_the_hold: bool,
        pair_events: bool) -> None:
    settings = make_settings(amqp_url, mongodb_url, db_name, graph.url)
    gated = GatedGraph(GraphClient(graph.url, settings.whatsapp_graph_version, timeout=5.0))
    dispatcher = gated_dispatcher(db, settings, gated, tap.publisher, processing_hold=0.5,
                                  pair_events=pair_events)
    cmd = command()
    handler = asyncio.create_task(dispatcher.dispatch(cmd))
    try:
        await asyncio.wait_for(gated.entered.wait(), 10)
        if graph_answers_within_the_hold:
            await asyncio.sleep(0.1)
            assert tap.of(cmd.message_id) == []  # PROCESSING is held for Meta's answer
        else:  # out on its own after the hold, the call still in flight
            await tap.wait_for(cmd.message_id, Status.PROCESSING, timeout=5)
            assert graph.accepted == []
        gated.gate.set()
        await asyncio.wait_for(handler, 10)
    finally:
        gated.gate.set()
        await gated.aclose()
    claim = await db[WHATSAPP_DISPATCHES].find_one({"_id": cmd.message_id})
    assert claim is not None
    await tap.expect_processing_then_sent(cmd.message_id, claim["created_at"],
                                          together=graph_answers_within_the_hold and pair_events)
    assert len(graph.requests) == 1
