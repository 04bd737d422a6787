"""The dispatch of one ``SendWhatsApp``: claim, PROCESSING, checks, line, pacing, the Graph call, outcome.

Checks before any call to Meta: the channel is enabled, the recipient has not opted out of the tenant's
WhatsApp messages (``opt_outs``), the tenant has a usable line. Graph errors are handled by code
(``postwire_whatsapp.cloud_api.handling``): permanent ones end the message FAILED with Meta's reason (190
on the tenant's own token also flags its line), throttles slow the number or the recipient down and
retry, network errors retry; the retry schedule is ``WHATSAPP_RETRY_DELAYS``. The outcome is recorded on
the claim before its event is published, so a redelivered command republishes it without a new call.

PROCESSING is not published before the call: it waits for the outcome, at most ``processing_hold``
seconds, and goes out with it in one ``StatusEvents`` (``postwire_platform.announcing``).

The call mark is the lease check right before the call (``Claims.calling``): a delivery that stalled
past its lease and was taken over by another ends there, acked, with no call, release, retry or
event of its own.
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
from postwire_contracts.messages import SendWhatsApp, StatusEvent
from postwire_contracts.status import Channel, Status
from postwire_platform.announcing import Announcer, settle
from postwire_platform.clock import Clock, utcnow
from postwire_platform.leases import Lease, LeaseLost
from postwire_platform.metrics import provider_call
from postwire_platform.mongo import Document
from postwire_platform.opt_outs import OptOutLookups
from postwire_platform.uncancellable import run_to_completion
from postwire_whatsapp import cloud_api
from postwire_whatsapp.cloud_api import GraphError, Handling
from postwire_whatsapp.numbers import wa_id

from .claims import FAILED, SENT, Claims
from .graph import GraphRefused, GraphSend, GraphUnavailable, WhatsAppClient
from .lines import Line, LineResolver, LineUnavailable
from .pacing import Pacer, delay_step
from .sandbox import SANDBOX_PHONE_NUMBER_ID

log = logging.getLogger(__name__)

SOURCE = "whatsapp-dispatcher"
OUTCOMES = Counter("postwire_whatsapp_dispatch_total", "WhatsApp dispatch outcomes",
                   ["outcome", "line"])


class EventSink(Protocol):
    """Where events and delayed commands go (``postwire_platform.broker.Publisher`` fits)."""

    async def publish(self, message: msgspec.Struct, routing_key: str, *,
                      message_id: str | None = None, headers: dict[str, Any] | None = None) -> None:
        ...

    async def delay(self, message: msgspec.Struct, target_queue: str, seconds: float, *,
                    message_id: str | None = None) -> None:
        ...


@dataclass(frozen=True)
class Clients:
    """The Graph API for live keys and the sandbox for test keys."""

    live: WhatsAppClient
    sandbox: WhatsAppClient


@dataclass(frozen=True)
class DispatchConfig:
    enabled: bool
    retry_delays: list[float]
    pacing_delays: list[float]
    recheck_seconds: float
    recipient_interval: float
    """Seconds a throttled recipient is left alone (one pair-rate interval)."""
    processing_hold: float = 0.2
    """Seconds PROCESSING waits for the outcome to go out with it (``postwire_platform.announcing``)."""
    pair_events: bool = True
    """PROCESSING and an outcome that came within the hold go out as one ``StatusEvents`` (False:
    two messages, PROCESSING confirmed first)."""


class Dispatcher:
    """Sends each ``SendWhatsApp`` at most once to Meta, whatever the broker redelivers."""

    def __init__(self, claims: Claims, sink: EventSink, clients: Clients, lines: LineResolver,
                 opt_outs: OptOutLookups, pacer: Pacer, config: DispatchConfig,
                 clock: Clock = utcnow) -> None:
        self._claims = claims
        self._sink = sink
        self._clients = clients
        self._lines = lines
        self._opt_outs = opt_outs
        self._pacer = pacer
        self._config = config
        self._clock = clock
        self._unrecorded: dict[str, tuple[str, dict[str, Any]]] = {}
        """Outcomes of calls made whose claim update failed (MongoDB down): recorded on redelivery."""
        self._announcer = Announcer(sink, topology.status_key(Channel.WHATSAPP),
                                    hold=config.processing_hold, pair=config.pair_events)

    async def dispatch(self, cmd: SendWhatsApp) -> None:
        """Handle one delivery of ``cmd``; returning normally means it may be acked.

        The opt-out lookup runs alongside the claim (and is answered with the other deliveries' in
        one ``find``), and PROCESSING goes out with the outcome (``postwire_platform.announcing``):
        two round trips fewer on the way to Meta than one after the other."""
        pending = self._unrecorded.get(cmd.message_id)
        if pending is not None:
            await self._record(cmd, *pending, republish=True)
            return
        opt_out = asyncio.ensure_future(self._opted_out(cmd))
        try:
            await self._claimed(cmd, opt_out)
        finally:
            await settle(opt_out)

    async def _claimed(self, cmd: SendWhatsApp, opt_out: Awaitable[bool]) -> None:
        claim = await self._claims.acquire(cmd.message_id, self._clock())
        if claim.kind == "finished":
            log.info("already dispatched; republishing its outcome",
                     extra={"message_id": cmd.message_id, "state": claim.doc["state"]})
            await self._announcer.publish_together([processing_event(cmd, claim.doc),
                                                    outcome_event(cmd, claim.doc)])
            return
        if claim.kind == "held":
            await self._sink.delay(cmd, topology.WHATSAPP_SEND_QUEUE, self._config.recheck_seconds)
            return
        assert claim.lease is not None, "an owned claim has a lease"
        held = self._announcer.hold(processing_event(cmd, claim.doc))
        try:
            if claim.kind == "unknown":
                log.error("the previous worker died during the Graph call; not sending again",
                          extra={"message_id": cmd.message_id})
                await self._fail(cmd, "outcome_unknown",
                                 "the dispatcher stopped during the call to Meta; the message is "
                                 "not sent again, to avoid a duplicate", line="unknown",
                                 lease=claim.lease)
            else:
                await self._deliver(cmd, claim.lease, opt_out)
            await held.out()
        except LeaseLost:
            log.info("claim taken over by another delivery; this one stops",
                     extra={"message_id": cmd.message_id})
            held.withdraw()  # PROCESSING is the new owner's to announce
        finally:
            await held.close()

    async def _deliver(self, cmd: SendWhatsApp, lease: Lease, opt_out: Awaitable[bool]) -> None:
        if not self._config.enabled:
            await self._fail(cmd, "whatsapp_disabled", "WHATSAPP_CLOUD_API_ENABLED is off",
                             line="none", lease=lease)
            return
        to = wa_id(cmd.to)
        if await opt_out:
            await self._fail(cmd, "opted_out",
                             "the recipient opted out of this tenant's WhatsApp messages (STOP)",
                             line="none", lease=lease)
            return
        try:
            line = await self._line(cmd)
        except LineUnavailable as exc:
            await self._fail(cmd, exc.code, exc.reason, line="none", lease=lease)
            return
        admission = self._pacer.admit(line.phone_number_id, to)
        if not admission.granted:
            seconds = delay_step(self._config.pacing_delays, admission.wait)
            await self._claims.release(lease, self._clock(), f"paced {seconds}s")
            OUTCOMES.labels(outcome="paced", line=line.source).inc()
            await self._sink.delay(cmd, topology.WHATSAPP_SEND_QUEUE, seconds)
            return
        if admission.wait > 0:
            self._pacer.waiting(line.phone_number_id, +1)
            try:
                await asyncio.sleep(admission.wait)
            finally:
                self._pacer.waiting(line.phone_number_id, -1)
        # From the call mark to the recorded answer, one step that a closing channel cannot cut.
        await run_to_completion(self._call(cmd, line, to, lease),
                                name=f"Graph call {cmd.message_id}")

    async def _line(self, cmd: SendWhatsApp) -> Line:
        if cmd.live:
            return await self._lines.resolve(cmd.tenant_id)
        phone = await self._lines.phone_number_id(cmd.tenant_id)
        return Line(phone or SANDBOX_PHONE_NUMBER_ID, "sandbox", "sandbox", False)

    async def _call(self, cmd: SendWhatsApp, line: Line, to: str, lease: Lease) -> None:
        client = self._clients.live if cmd.live else self._clients.sandbox
        request = GraphSend(message_id=cmd.message_id, phone_number_id=line.phone_number_id,
                            token=line.token, to=to, body=request_body(cmd, to))
        common: dict[str, Any] = {"line": line.source, "phone_number_id": line.phone_number_id}
        await self._claims.calling(lease, self._clock())
        try:
            result = await provider_call(Channel.WHATSAPP, "graph" if cmd.live else "sandbox",
                                         client.send(request))
        except GraphRefused as exc:
            await self._refused(cmd, line, to, exc.error, lease)
            return
        except GraphUnavailable as exc:
            await self._retry_or_fail(cmd, line, "graph_unavailable", str(exc), lease)
            return
        OUTCOMES.labels(outcome="sent", line=line.source).inc()
        log.info("sent", extra={"message_id": cmd.message_id, "wamid": result.wamid,
                                "line": line.source})
        await self._record(cmd, SENT, {**common, "provider_message_id": result.wamid,
                                       "wa_id": result.wa_id or to})

    async def _refused(self, cmd: SendWhatsApp, line: Line, to: str, error: GraphError,
                       lease: Lease) -> None:
        how = cloud_api.handling(error.code)
        if how is Handling.THROTTLE_NUMBER:
            self._pacer.throttle_number(line.phone_number_id, 1.0)
        elif how is Handling.THROTTLE_RECIPIENT:
            self._pacer.throttle_recipient(line.phone_number_id, to, self._config.recipient_interval)
        if how is not Handling.PERMANENT:
            await self._retry_or_fail(cmd, line, str(error.code), error.reason, lease)
            return
        if error.code == cloud_api.TOKEN_EXPIRED:
            if line.tenant_token:
                await self._lines.mark_needs_attention(cmd.tenant_id, line, error.reason)
            log.error("Meta rejected the access token (190)", extra={
                "message_id": cmd.message_id, "line": line.source,
                "phone_number_id": line.phone_number_id, "tenant_token": line.tenant_token})
        code = str(error.code) if error.code else "graph_error"
        meaning = cloud_api.REASONS.get(error.code)
        reason = f"{meaning} (Meta: {error.reason})" if meaning else error.reason
        await self._fail(cmd, code, reason, line=line.source, phone_number_id=line.phone_number_id,
                         graph_error=_error_detail(error))

    async def _retry_or_fail(self, cmd: SendWhatsApp, line: Line, code: str, error: str,
                             lease: Lease) -> None:
        delays = self._config.retry_delays
        attempt = cmd.attempt + 1
        if attempt > len(delays):
            await self._fail(cmd, "retries_exhausted" if code == "graph_unavailable" else code,
                             f"gave up after {attempt} attempts: {error}", line=line.source,
                             lease=lease, phone_number_id=line.phone_number_id)
            return
        seconds = delays[attempt - 1]
        log.warning("not sent; retrying: %s", error, extra={
            "message_id": cmd.message_id, "attempt": attempt, "retry_in": seconds, "code": code})
        OUTCOMES.labels(outcome="retried", line=line.source).inc()
        await self._claims.release(lease, self._clock(), f"{code}: {error}")
        await self._sink.delay(msgspec.structs.replace(cmd, attempt=attempt),
                               topology.WHATSAPP_SEND_QUEUE, seconds)

    async def _fail(self, cmd: SendWhatsApp, code: str, reason: str, *, line: str,
                    lease: Lease | None = None, **fields: Any) -> None:
        """Record and announce FAILED: Meta's refusal whoever holds the claim, an outcome decided
        here (``lease`` given) only while the claim is still this delivery's."""
        await self._record(cmd, FAILED, {"line": line, "error_code": code, "error_reason": reason,
                                         **fields}, lease)
        OUTCOMES.labels(outcome="failed", line=line).inc()
        log.info("failed", extra={"message_id": cmd.message_id, "error_code": code})

    async def _record(self, cmd: SendWhatsApp, state: str, fields: dict[str, Any],
                      lease: Lease | None = None, *, republish: bool = False) -> None:
        """Only an answer of Meta is kept for the redelivery when the write fails; a decision is
        made again (``republish``: that redelivery, which announces PROCESSING again too)."""
        try:
            doc = await self._claims.finish(cmd.message_id, self._clock(), state, fields, lease)
        except BaseException:
            if lease is None:
                self._unrecorded[cmd.message_id] = (state, fields)
            raise
        self._unrecorded.pop(cmd.message_id, None)
        if republish:
            await self._announcer.publish_together([processing_event(cmd, doc),
                                                    outcome_event(cmd, doc)])
        else:
            await self._announcer.publish([outcome_event(cmd, doc)])

    async def _opted_out(self, cmd: SendWhatsApp) -> bool:
        return await self._opt_outs.opted_out(cmd.tenant_id, wa_id(cmd.to))


def request_body(cmd: SendWhatsApp, to: str) -> dict[str, Any]:
    """The Graph API body of ``cmd``: our message id rides in ``biz_opaque_callback_data``."""
    if cmd.template is not None:
        return cloud_api.template_body(to, cmd.template.name, cmd.template.language,
                                       list(cmd.template.body_parameters),
                                       callback_data=cmd.message_id)
    return cloud_api.text_body(to, cmd.text or "", callback_data=cmd.message_id)


def _error_detail(error: GraphError) -> dict[str, Any]:
    return {k: v for k, v in msgspec.structs.asdict(error).items() if v is not None
            and k != "error_data"} | (
        {"details": error.error_data.details} if error.error_data and error.error_data.details
        else {})


def processing_event(cmd: SendWhatsApp, doc: Document) -> StatusEvent:
    """PROCESSING, timed when the message was first claimed (identical on every republish)."""
    return StatusEvent(
        event_id=f"{cmd.message_id}:processing", channel=Channel.WHATSAPP, status=Status.PROCESSING,
        occurred_at=_at(doc, "created_at"), source=SOURCE, message_id=cmd.message_id,
        tenant_id=cmd.tenant_id,
    )


def outcome_event(cmd: SendWhatsApp, doc: Document) -> StatusEvent:
    """SENT (with the wamid) or FAILED (with the reason) from the recorded claim."""
    detail = {k: doc[k] for k in ("line", "phone_number_id", "wa_id", "graph_error")
              if doc.get(k) is not None}
    common: dict[str, Any] = {
        "channel": Channel.WHATSAPP, "occurred_at": _at(doc, "finished_at"), "source": SOURCE,
        "message_id": cmd.message_id, "tenant_id": cmd.tenant_id, "detail": detail,
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
