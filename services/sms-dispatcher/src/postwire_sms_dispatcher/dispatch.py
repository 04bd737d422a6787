"""The dispatch of one ``SendSms``: claim, report PROCESSING, submit, record, report the outcome.

No broker code here: events and delayed retries go through an ``EventSink`` (the platform ``Publisher``
fits). The outcome is written to the claim before its events are published, so a crash anywhere after the
carrier call is covered: the redelivered command finds the recorded outcome and republishes the same
events (same ``event_id``) without calling the carrier again.

Each submit goes out only while the claim's lease is this delivery's (``Claims.hold``, called by the
carrier adapter right before the wire): a delivery that stalled past its lease and was taken over
by another ends there, acked, with no submit, release, retry or event of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import msgspec
from prometheus_client import Counter

from postwire_contracts import topology
from postwire_contracts.messages import SendSms, StatusEvent
from postwire_contracts.status import Channel, Status
from postwire_platform.announcing import Announcer, settle
from postwire_platform.clock import Clock, utcnow
from postwire_platform.leases import Lease, LeaseLost
from postwire_platform.metrics import provider_call
from postwire_platform.mongo import Document
from postwire_platform.uncancellable import run_to_completion

from .carrier import (
    Expired,
    PermanentCarrierError,
    RouteUnavailable,
    SmsCarrier,
    SubmitRequest,
    SubmitResult,
    TransientCarrierError,
    callback_url,
)
from .claims import FAILED, SENT, Claim, Claims
from .deliveries import RecentSubmits
from .routes import RoutingTable

log = logging.getLogger(__name__)

SOURCE = "sms-dispatcher"
OUTCOMES = Counter("postwire_sms_dispatch_total", "SMS dispatch outcomes", ["outcome", "carrier"])


class EventSink(Protocol):
    """Where events and delayed commands go (``postwire_platform.broker.Publisher`` fits)."""

    async def publish(self, message: msgspec.Struct, routing_key: str, *,
                      message_id: str | None = None, headers: dict[str, Any] | None = None) -> None:
        """Publish with a confirm; raise when it was not confirmed."""
        ...

    async def delay(self, message: msgspec.Struct, target_queue: str, seconds: float, *,
                    message_id: str | None = None) -> None:
        """Return ``message`` to ``target_queue`` after ``seconds``."""
        ...


class OptOutCheck(Protocol):
    """Whether a tenant's recipient opted out (the shared ``opt_outs`` collection)."""

    async def opted_out(self, tenant_id: str, address: str) -> bool:
        """True when ``address`` opted out of ``tenant_id``'s SMS."""
        ...


class NoOptOuts:
    """An ``OptOutCheck`` for tests that have no opt-outs."""

    async def opted_out(self, tenant_id: str, address: str) -> bool:
        return False


@dataclass(frozen=True)
class Carriers:
    """The sandbox for test keys and the operator's routes (``SMS_ROUTES``) for live ones."""

    sandbox: SmsCarrier
    routes: dict[str, SmsCarrier]
    table: RoutingTable

    def plan(self, cmd: SendSms) -> list[tuple[str, SmsCarrier]]:
        """The carriers to try for ``cmd``, in failover order (empty: no live carrier)."""
        if not cmd.live:
            return [("sandbox", self.sandbox)]
        return [(name, self.routes[name]) for name in self.table.candidates(cmd.tenant_id, cmd.to)]


def send_queue(cmd: SendSms) -> str:
    """The queue ``cmd`` came from and returns to after a delay: the OTP lane or the standard one."""
    return topology.SMS_OTP_QUEUE if cmd.flow == "OTP" else topology.SMS_SEND_QUEUE


@dataclass(frozen=True)
class DispatchConfig:
    """What dispatch needs from the settings."""

    dlr_callback_url: str
    dlr_token: str
    retry_delays: list[float]
    recheck_seconds: float
    processing_hold: float = 0.2
    """Seconds PROCESSING waits for the outcome to go out with it (see ``Dispatcher.dispatch``)."""
    pair_events: bool = True
    """PROCESSING and an outcome that came within the hold go out as one ``StatusEvents`` (False:
    two messages, PROCESSING confirmed first)."""


class Dispatcher:
    """Delivers each ``SendSms`` at most once to a carrier, whatever the broker redelivers."""

    def __init__(self, claims: Claims, sink: EventSink, carriers: Carriers, config: DispatchConfig,
                 clock: Clock = utcnow, opt_outs: OptOutCheck | None = None,
                 recent: RecentSubmits | None = None) -> None:
        self._recent = recent or RecentSubmits()
        self._claims = claims
        self._sink = sink
        self._carriers = carriers
        self._config = config
        self._clock = clock
        self._opt_outs = opt_outs or NoOptOuts()
        self._announcer = Announcer(sink, topology.status_key(Channel.SMS),
                                    hold=config.processing_hold, pair=config.pair_events)

    async def dispatch(self, cmd: SendSms) -> None:
        """Handle one delivery of ``cmd``; returning normally means it may be acked.

        Two round trips are kept off the way to the carrier: the opt-out lookup runs alongside the
        claim, and PROCESSING is not published before the submit. It waits for the outcome, at most
        ``processing_hold`` seconds, and goes out with it, PROCESSING first, in one ``StatusEvents``
        message (``pair_events``; off: right before it): the two reach reporting together and land
        in the timeline in one write instead of two. When the carrier takes longer, PROCESSING goes
        out on its own after the hold, and every later event of the message waits for its confirm,
        so a customer still hears of them in order; its time is the claim's either way.
        """
        opt_out = asyncio.ensure_future(self._opt_outs.opted_out(cmd.tenant_id, cmd.to))
        try:
            claim = await self._claims.acquire(cmd.message_id, self._clock())
            if claim.kind == "finished":
                log.info("already dispatched; republishing its outcome",
                         extra={"message_id": cmd.message_id, "state": claim.doc["state"]})
                await self._publish_outcome(cmd, claim.doc)
                return
            if claim.kind == "held":
                log.info("claim held by a live lease; re-checking later",
                         extra={"message_id": cmd.message_id, "owner": claim.doc.get("owner")})
                await self._sink.delay(cmd, send_queue(cmd), self._config.recheck_seconds)
                return
            held = self._announcer.hold(processing_event(cmd, claim.doc))
            try:
                await self._submit(cmd, claim, opt_out)
                await held.out()
            except LeaseLost:
                log.info("claim taken over by another delivery; this one stops",
                         extra={"message_id": cmd.message_id})
                held.withdraw()  # PROCESSING is the new owner's to announce
            finally:
                await held.close()
        finally:
            await settle(opt_out)

    async def _submit(self, cmd: SendSms, claim: Claim, opt_out: Awaitable[bool]) -> None:
        plan = self._carriers.plan(cmd)
        first = plan[0][0] if plan else ("sandbox" if not cmd.live else "none")
        lease = claim.lease
        assert lease is not None, "an owned claim has a lease"
        if cmd.expires_at is not None and self._clock() >= cmd.expires_at:
            await self._fail(cmd, first, "expired", "the message expired before it was sent", lease)
            return
        if await opt_out:
            await self._fail(cmd, first, "opted_out", "the recipient opted out of this sender",
                             lease)
            return
        if not plan:
            await self._fail(cmd, first, "no_carrier", "no live SMS carrier is configured", lease)
            return
        request = SubmitRequest(
            message_id=cmd.message_id, sender=cmd.sender_id, to=cmd.to, text=cmd.body,
            callback_url=callback_url(self._config.dlr_callback_url, self._config.dlr_token,
                                      cmd.message_id),
            otp=cmd.flow == "OTP", expires_at=cmd.expires_at,
            before_submit=lambda: self._claims.hold(lease, self._clock()),
        )
        # The submit and the record of its answer: one step a closing channel cannot cut in half
        # (a handler cancelled after the carrier took the message would let a take-over resend it).
        await run_to_completion(self._send(cmd, claim, plan, request, first),
                                name=f"submit {cmd.message_id}")

    async def _send(self, cmd: SendSms, claim: Claim, plan: list[tuple[str, SmsCarrier]],
                    request: SubmitRequest, first: str) -> None:
        unavailable: list[str] = []
        for carrier_name, carrier in plan:
            try:
                result = await provider_call(Channel.SMS, carrier_name, carrier.submit(request))
            except RouteUnavailable as exc:
                unavailable.append(str(exc))
                log.warning("route unavailable; failing over", extra={
                    "message_id": cmd.message_id, "carrier": carrier_name, "error": str(exc)})
                continue
            except Expired as exc:  # found by the adapter before the wire
                await self._fail(cmd, carrier_name, "expired", str(exc), claim.lease)
                return
            except PermanentCarrierError as exc:
                await self._fail(cmd, carrier_name, exc.code, exc.reason)
                return
            except TransientCarrierError as exc:
                await self._retry_or_fail(cmd, claim, carrier_name, str(exc))
                return
            await self._sent(cmd, carrier_name, carrier, result)
            return
        await self._retry_or_fail(cmd, claim, first, "; ".join(unavailable))

    async def _sent(self, cmd: SendSms, carrier_name: str, carrier: SmsCarrier,
                    result: SubmitResult) -> None:
        fields: dict[str, Any] = {"carrier": carrier_name, "provider_message_id": result.carrier_id,
                                  "tenant_id": cmd.tenant_id}
        recent = None
        if result.part_ids:
            fields["part_ids"] = result.part_ids
            keys = getattr(carrier, "receipt_keys", None)
            if keys is not None:
                fields["part_keys"] = keys(result.part_ids)
                # its receipts may arrive before the outcome below is written: match them in memory
                recent = self._recent.add(fields["part_keys"], {
                    "_id": cmd.message_id, "tenant_id": cmd.tenant_id,
                    "provider_message_id": result.carrier_id, "part_keys": fields["part_keys"]})
        try:
            doc = await self._claims.finish(cmd.message_id, self._clock(), SENT, fields)
            OUTCOMES.labels(outcome="sent", carrier=carrier_name).inc()
            log.info("sent", extra={"message_id": cmd.message_id, "carrier": carrier_name,
                                    "provider_message_id": result.carrier_id,
                                    "parts": len(result.part_ids) or 1})
            await self._publish(outcome_event(cmd, doc))
        finally:
            # receipts held back for this message go out now, even when recording it failed
            if recent is not None:
                recent.announced.set()

    async def _retry_or_fail(self, cmd: SendSms, claim: Claim, carrier_name: str,
                             error: str) -> None:
        delays = self._config.retry_delays
        attempts = claim.attempts
        if attempts > len(delays):
            await self._fail(cmd, carrier_name, "carrier_unavailable",
                             f"carrier unavailable after {attempts} attempts: {error}", claim.lease)
            return
        seconds = delays[attempts - 1]
        log.warning("carrier unavailable; retrying: %s", error, extra={
            "message_id": cmd.message_id, "attempt": attempts, "retry_in": seconds, "error": error})
        OUTCOMES.labels(outcome="retried", carrier=carrier_name).inc()
        assert claim.lease is not None, "an owned claim has a lease"
        await self._claims.release(claim.lease, self._clock(), error)
        retry = msgspec.structs.replace(cmd, attempt=attempts)
        await self._sink.delay(retry, send_queue(cmd), seconds)

    async def _fail(self, cmd: SendSms, carrier_name: str, code: str, reason: str,
                    lease: Lease | None = None) -> None:
        """Record and announce FAILED: a carrier's refusal whoever holds the claim, an outcome
        decided here (``lease`` given) only while the claim is still this delivery's."""
        doc = await self._claims.finish(cmd.message_id, self._clock(), FAILED, {
            "carrier": carrier_name, "error_code": code, "error_reason": reason}, lease)
        OUTCOMES.labels(outcome="failed", carrier=carrier_name).inc()
        log.info("failed", extra={"message_id": cmd.message_id, "error_code": code})
        await self._publish(outcome_event(cmd, doc))

    async def _publish_outcome(self, cmd: SendSms, doc: Document) -> None:
        """Republish everything a finished claim stands for (PROCESSING, then SENT or FAILED)."""
        await self._announcer.publish_together([processing_event(cmd, doc), outcome_event(cmd, doc)])

    async def _publish(self, event: StatusEvent) -> None:
        await self._announcer.publish([event])


def processing_event(cmd: SendSms, doc: Document) -> StatusEvent:
    """PROCESSING, timed when the message was first claimed (identical on every republish)."""
    return StatusEvent(
        event_id=f"{cmd.message_id}:processing", channel=Channel.SMS, status=Status.PROCESSING,
        occurred_at=_at(doc, "created_at"), source=SOURCE, message_id=cmd.message_id,
        tenant_id=cmd.tenant_id,
    )


def outcome_event(cmd: SendSms, doc: Document) -> StatusEvent:
    """SENT or FAILED from the recorded claim."""
    common: dict[str, Any] = {
        "channel": Channel.SMS, "occurred_at": _at(doc, "finished_at"), "source": SOURCE,
        "message_id": cmd.message_id, "tenant_id": cmd.tenant_id,
        "detail": {"carrier": doc.get("carrier")} | (
            {"parts": len(doc["part_ids"])} if len(doc.get("part_ids") or ()) > 1 else {}),
    }
    if doc["state"] == SENT:
        return StatusEvent(event_id=f"{cmd.message_id}:sent", status=Status.SENT,
                           provider_message_id=doc.get("provider_message_id"), **common)
    return StatusEvent(event_id=f"{cmd.message_id}:failed", status=Status.FAILED,
                       error_code=doc.get("error_code"), error_reason=doc.get("error_reason"),
                       **common)


def _at(doc: Document, key: str) -> datetime:
    value = doc.get(key) or doc.get("updated_at")
    assert isinstance(value, datetime), f"claim {doc.get('_id')} has no {key}"
    return value
