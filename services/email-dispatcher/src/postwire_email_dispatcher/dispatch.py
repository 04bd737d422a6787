"""The dispatch of one ``SendEmail``: claim, report PROCESSING, check suppressions, sign, deliver, classify.

PROCESSING is not published before the SMTP transaction: it waits for the outcome, at most
``processing_hold`` seconds, and goes out with it in one ``StatusEvents`` (``postwire_platform.announcing``).

As in sms-dispatcher, the outcome is written to the claim before its events are published, so a crash
anywhere after the SMTP transaction is covered: the redelivered command finds the recorded outcome and
republishes the same events (same ``event_id``) without talking SMTP again.

Outcomes: accepted → SENT (DELIVERED too when the recipient's own MX accepted it); 4xx or no answer →
a timeline note and a retry through the delay queue, and after the last retry FAILED
``email_soft_bounce``; 5xx → FAILED ``email_hard_bounce`` (plus a suppression when the address is bad);
a suppressed recipient → FAILED ``suppressed`` without any SMTP.

At most once across crashes: right before DATA the claim records ``data_at``. A claim taken over from a
dead owner with ``data_at`` set ends FAILED ``outcome_unknown`` instead of being sent again (the server
may have taken it; its answer was never recorded). A crash before DATA is retried as usual. So is a
``data_at`` this process wrote without hearing back (MongoDB went away with the write applied and its
answer lost): DATA was not begun then, so the mark is known to be empty.

The ``data_at`` mark is also the lease check right before DATA (``Claims.mark_data``): a delivery that
stalled past its lease and was taken over by another ends there, acked, with no DATA, release, retry
or event of its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import msgspec
from prometheus_client import Counter

from postwire_contracts import topology
from postwire_contracts.email_events import EMAIL_HARD_BOUNCE, EMAIL_SOFT_BOUNCE
from postwire_contracts.messages import SendEmail, StatusEvent
from postwire_contracts.status import Channel, Status
from postwire_platform.announcing import Announcer
from postwire_platform.clock import Clock, utcnow
from postwire_platform.leases import Lease, LeaseLost
from postwire_platform.marks import UnansweredMarks
from postwire_platform.mongo import Document
from postwire_platform.uncancellable import run_to_completion

from .answers import DeliveryError, SmtpAnswer
from .claims import FAILED, SENT, Claim, Claims
from .compose import Tracking, compose, envelope_sender, sender_domain
from .stores import DomainKeys, Suppressions
from .transport import EmailTransport, NotRecorded, Outgoing

log = logging.getLogger(__name__)

SOURCE = "email-dispatcher"
OUTCOMES = Counter("postwire_email_dispatch_outcomes", "Email dispatch outcomes",
                   ["outcome", "transport"])

HARD = "hard_bounce"
SOFT = "soft_bounce"
SUPPRESSED = "suppressed"
UNKNOWN = "outcome_unknown"


class EventSink(Protocol):
    """Where events and delayed commands go (``postwire_platform.broker.Publisher`` fits)."""

    async def publish(self, message: msgspec.Struct, routing_key: str, *,
                      message_id: str | None = None, headers: dict[str, Any] | None = None) -> None:
        ...

    async def delay(self, message: msgspec.Struct, target_queue: str, seconds: float, *,
                    message_id: str | None = None) -> None:
        ...


@dataclass(frozen=True)
class Transports:
    """The sandbox for test keys and the live transport (the relay, or direct MX)."""

    sandbox: EmailTransport
    live: EmailTransport


@dataclass(frozen=True)
class DispatchConfig:
    retry_delays: list[float]
    recheck_seconds: float
    tracking: Tracking | None
    processing_hold: float = 0.2
    """Seconds PROCESSING waits for the outcome to go out with it (``postwire_platform.announcing``)."""
    pair_events: bool = True
    """PROCESSING and the events that came within the hold go out as one ``StatusEvents`` (False:
    one message each, PROCESSING confirmed first)."""


class Dispatcher:
    """Delivers each ``SendEmail`` at most once over SMTP, whatever the broker redelivers."""

    def __init__(self, claims: Claims, sink: EventSink, transports: Transports, keys: DomainKeys,
                 suppressions: Suppressions, config: DispatchConfig, clock: Clock = utcnow) -> None:
        self._claims = claims
        self._sink = sink
        self._transports = transports
        self._keys = keys
        self._suppressions = suppressions
        self._config = config
        self._clock = clock
        self._unrecorded: dict[str, tuple[str, str, dict[str, Any]]] = {}
        """Outcomes known here whose claim update failed (MongoDB down): recorded on redelivery,
        instead of the take-over reading the claim's ``data_at`` as an unknown outcome."""
        self._unanswered = UnansweredMarks(refused=(LeaseLost,))
        """``data_at`` marks whose write failed here, so DATA was not begun."""
        self._announcer = Announcer(sink, topology.status_key(Channel.EMAIL),
                                    hold=config.processing_hold, pair=config.pair_events)

    async def dispatch(self, cmd: SendEmail) -> None:
        """Handle one delivery of ``cmd``; returning normally means it may be acked."""
        pending = self._unrecorded.get(cmd.message_id)
        if pending is not None:
            await self._finish(cmd, *pending, republish=True)
            return
        claim = await self._claims.acquire(cmd.message_id, self._clock())
        if claim.kind == "finished":
            log.info("already dispatched; republishing its outcome",
                     extra={"message_id": cmd.message_id, "state": claim.doc["state"]})
            await self._after_finish(cmd, claim.doc, republish=True)
            return
        if claim.kind == "held":
            await self._sink.delay(cmd, topology.EMAIL_SEND_QUEUE, self._config.recheck_seconds)
            return
        held = self._announcer.hold(processing_event(cmd, claim.doc))
        try:
            await self._owned(cmd, claim)
            await held.out()
        except LeaseLost:
            log.info("claim taken over by another delivery; this one stops",
                     extra={"message_id": cmd.message_id})
            held.withdraw()  # PROCESSING is the new owner's to announce
        finally:
            await held.close()

    async def _owned(self, cmd: SendEmail, claim: Claim) -> None:
        lease = claim.lease
        assert lease is not None, "an owned claim has a lease"
        transport = self._transports.live if cmd.live else self._transports.sandbox
        data_at = claim.doc.get("data_at")
        if data_at is not None and not self._unanswered.known_empty(cmd.message_id, data_at):
            await self._outcome_unknown(cmd, transport.name, claim.doc, lease)
            return
        suppressed = await self._suppressions.find(cmd.tenant_id, cmd.to)
        recipients = [r for r in cmd.to if r.lower() not in suppressed]
        if not recipients:
            entry = next(iter(suppressed.values()))
            await self._finish(cmd, FAILED, transport.name, {
                "outcome": SUPPRESSED, "error_code": SUPPRESSED,
                "error_reason": f"{entry['email']} is on the suppression list "
                                f"({entry.get('reason', 'manual')})"}, lease)
            return
        key = await self._keys.for_sender(cmd.tenant_id, sender_domain(cmd)) if cmd.live else None
        composed = compose(cmd, key=key, tracking_config=self._config.tracking)
        outgoing = Outgoing(message_id=cmd.message_id, tenant_id=cmd.tenant_id,
                            mail_from=envelope_sender(cmd, key), recipients=recipients,
                            data=composed.data, pixel_url=composed.pixel_url,
                            before_data=lambda: self._unanswered.write(
                                cmd.message_id, self._clock(),
                                lambda _, at: self._claims.mark_data(lease, at)))
        sent_fields = {"provider_message_id": composed.message_id_header,
                       "dkim_domain": key.domain if key else None, "skipped": sorted(suppressed)}
        # The SMTP transaction and the record of its answer: one step a closing channel cannot cut.
        await run_to_completion(self._transmit(cmd, claim, transport, outgoing, sent_fields),
                                name=f"SMTP transaction {cmd.message_id}")

    async def _transmit(self, cmd: SendEmail, claim: Claim, transport: EmailTransport,
                        outgoing: Outgoing, sent_fields: dict[str, Any]) -> None:
        try:
            accepted = await transport.deliver(outgoing)
        except DeliveryError as exc:
            if _lease_lost(exc):  # the DATA mark found the claim another's: DATA was not sent
                raise LeaseLost(f"claim {cmd.message_id} was taken over") from exc
            if exc.transient:
                await self._retry_or_soft_bounce(cmd, claim, transport.name, exc.answer)
            else:
                await self._hard_bounce(cmd, transport.name, exc.answer)
            return
        await self._finish(cmd, SENT, transport.name, {
            "outcome": "delivered" if accepted.transport == "mx" else "sent",
            "host": accepted.host, "smtp": _smtp(accepted.answer), **sent_fields})

    async def _outcome_unknown(self, cmd: SendEmail, transport: str, doc: Document,
                               lease: Lease) -> None:
        """The previous owner died after DATA began and before recording the answer: the message may
        have been delivered, and sending it again could deliver it twice. At most once wins."""
        log.warning("outcome of an interrupted delivery unknown; not sent again",
                    extra={"message_id": cmd.message_id, "data_at": str(doc.get("data_at"))})
        await self._finish(cmd, FAILED, transport, {
            "outcome": UNKNOWN, "error_code": UNKNOWN,
            "error_reason": "the dispatcher stopped while the receiving server was taking this "
                            "message and its answer was never recorded; it may have been delivered, "
                            "so it is not sent again"}, lease)

    async def _hard_bounce(self, cmd: SendEmail, transport: str, answer: SmtpAnswer) -> None:
        await self._finish(cmd, FAILED, transport, {
            "outcome": HARD, "error_code": HARD, "error_reason": answer.line(),
            "smtp": _smtp(answer), "suppress": answer.suppresses})

    async def _retry_or_soft_bounce(self, cmd: SendEmail, claim: Claim, transport: str,
                                    answer: SmtpAnswer) -> None:
        delays = self._config.retry_delays
        attempts = claim.attempts
        if attempts > len(delays):
            await self._finish(cmd, FAILED, transport, {
                "outcome": SOFT, "error_code": SOFT,
                "error_reason": f"still deferred after {attempts} attempts: {answer.line()}",
                "smtp": _smtp(answer)}, claim.lease)
            return
        seconds = delays[attempts - 1]
        log.warning("delivery deferred; retrying", extra={
            "message_id": cmd.message_id, "attempt": attempts, "retry_in": seconds,
            "smtp": answer.line()})
        OUTCOMES.labels(outcome="deferred", transport=transport).inc()
        await self._publish(StatusEvent(
            event_id=f"{cmd.message_id}:deferred:{attempts}", channel=Channel.EMAIL,
            status=Status.PROCESSING, occurred_at=self._clock(), source=SOURCE,
            message_id=cmd.message_id, tenant_id=cmd.tenant_id, provider_status="deferred",
            detail={**answer.as_detail(), "attempt": attempts, "retry_in_seconds": seconds,
                    "transport": transport}))
        assert claim.lease is not None, "an owned claim has a lease"
        await self._claims.release(claim.lease, self._clock(), answer.line())
        await self._sink.delay(msgspec.structs.replace(cmd, attempt=attempts),
                               topology.EMAIL_SEND_QUEUE, seconds)

    async def _finish(self, cmd: SendEmail, state: str, transport: str,
                      fields: dict[str, Any], lease: Lease | None = None, *,
                      republish: bool = False) -> None:
        """Record and announce the outcome: the server's answer whoever holds the claim, an outcome
        decided here (``lease`` given) only while the claim is still this delivery's. Only an
        answer is kept for the redelivery when the write fails; a decision is made again
        (``republish``: that redelivery, which announces PROCESSING again too)."""
        try:
            doc = await self._claims.finish(cmd.message_id, self._clock(), state,
                                            {"transport": transport, **fields}, lease)
        except BaseException:
            if lease is None:
                self._unrecorded[cmd.message_id] = (state, transport, fields)
            raise
        self._unrecorded.pop(cmd.message_id, None)
        self._unanswered.forget(cmd.message_id)
        OUTCOMES.labels(outcome=str(doc.get("outcome", state)), transport=transport).inc()
        log.info("dispatched", extra={"message_id": cmd.message_id, "outcome": doc.get("outcome")})
        await self._after_finish(cmd, doc, republish=republish)

    async def _after_finish(self, cmd: SendEmail, doc: Document, *, republish: bool) -> None:
        """Side effects of a recorded outcome, all idempotent: suppression, then the events, in one
        message (PROCESSING again only when republishing for a redelivered command; otherwise with
        the held PROCESSING if it has not gone out yet)."""
        if doc.get("suppress"):
            for address in cmd.to:
                await self._suppressions.add(cmd.tenant_id, address, reason=HARD,
                                             message_id=cmd.message_id,
                                             detail=dict(doc.get("smtp") or {}),
                                             now=_at(doc, "finished_at"))
        if republish:
            await self._announcer.publish_together([processing_event(cmd, doc),
                                                    *outcome_events(cmd, doc)])
        else:
            await self._announcer.publish(outcome_events(cmd, doc))

    async def _publish(self, event: StatusEvent) -> None:
        await self._announcer.publish([event])


def _lease_lost(exc: DeliveryError) -> bool:
    """Whether the delivery was abandoned because its DATA mark raised ``LeaseLost``."""
    cause = exc.__cause__
    return isinstance(cause, NotRecorded) and isinstance(cause.__cause__, LeaseLost)


def _smtp(answer: SmtpAnswer) -> dict[str, Any]:
    return {"code": answer.code, "enhanced": answer.enhanced, "text": answer.text,
            "stage": answer.stage}


def processing_event(cmd: SendEmail, doc: Document) -> StatusEvent:
    """PROCESSING, timed when the message was first claimed (identical on every republish)."""
    return StatusEvent(
        event_id=f"{cmd.message_id}:processing", channel=Channel.EMAIL, status=Status.PROCESSING,
        occurred_at=_at(doc, "created_at"), source=SOURCE, message_id=cmd.message_id,
        tenant_id=cmd.tenant_id)


def outcome_events(cmd: SendEmail, doc: Document) -> list[StatusEvent]:
    """SENT (and DELIVERED after direct MX acceptance) or FAILED, from the recorded claim."""
    smtp = dict(doc.get("smtp") or {})
    detail: dict[str, Any] = {"transport": doc.get("transport")}
    if smtp:
        detail.update(smtp_code=smtp.get("code"), enhanced_code=smtp.get("enhanced"),
                      smtp_response=smtp.get("text"))
    if doc.get("host"):
        detail["host"] = doc["host"]
    if doc.get("dkim_domain"):
        detail["dkim_domain"] = doc["dkim_domain"]
    common: dict[str, Any] = {
        "channel": Channel.EMAIL, "occurred_at": _at(doc, "finished_at"), "source": SOURCE,
        "message_id": cmd.message_id, "tenant_id": cmd.tenant_id, "detail": detail,
    }
    if doc["state"] == SENT:
        pid = doc.get("provider_message_id")
        events = [StatusEvent(event_id=f"{cmd.message_id}:sent", status=Status.SENT,
                              provider_message_id=pid, provider_status=str(smtp.get("code", "")),
                              **common)]
        if doc.get("outcome") == "delivered":
            events.append(StatusEvent(event_id=f"{cmd.message_id}:delivered",
                                      status=Status.DELIVERED, provider_message_id=pid,
                                      provider_status=str(smtp.get("code", "")), **common))
        return events
    outcome = doc.get("outcome")
    event_type = {HARD: EMAIL_HARD_BOUNCE, SOFT: EMAIL_SOFT_BOUNCE}.get(str(outcome))
    if doc.get("suppress"):
        detail["suppressed"] = True
    return [StatusEvent(event_id=f"{cmd.message_id}:failed", status=Status.FAILED,
                        error_code=doc.get("error_code"), error_reason=doc.get("error_reason"),
                        provider_status=str(smtp["code"]) if smtp else None,
                        event_type=event_type, **common)]


def _at(doc: Document, key: str) -> datetime:
    value = doc.get(key) or doc.get("updated_at")
    assert isinstance(value, datetime), f"claim {doc.get('_id')} has no {key}"
    return value
