"""The SMPP carrier adapter on ``smpp34``: transceiver binds, reconnect with backoff, window, throughput.

Library choice (tried all three): ``smpp34`` (Rust core, asyncio API) frames PDUs and answers
``enquire_link`` in its core and gives one awaitable result per ``submit_sm`` (its ``window_size`` is
not relied on: each bind's ``PriorityGate`` keeps the window); ``aiosmpplib`` has no window and reports
results through a queue-and-hook model with in-memory correlation; ``smpplib`` is blocking sockets and
threads.

Two limits of ``smpp34`` (1.5.0) shape the reading side. It acknowledges a ``deliver_sm`` as it queues it
for us, before we publish it. And when that queue is full it answers ESME_RMSGQFUL with a
``deliver_sm_resp`` one octet longer than its ``command_length`` (the NUL of an empty message_id is
written but not counted), which throws the SMSC's framing out of step: from then on the SMSC reads
nothing sensible on the bind (our own simulator waits for a PDU that never completes), while the session
still looks alive to us, so every submit in flight times out and is retried, a duplicate when the
carrier had taken it. So a bind never stops reading: each event gets a task of its own at once,
however long the handlers take (a receipt waits for its message's SENT event, a lookup for a busy
database), and the queue has room for the event loop's pauses. The receipts taken but not yet
published are counted in ``postwire_smpp_receipts_in_hand``; on shutdown the binds are closed after the
in-flight submits, and the handlers get a grace period to publish.

``smpp34`` also leaves Nagle's algorithm on its sockets; each bind sets TCP_NODELAY on its own once
bound (``nodelay.py``), or a ``submit_sm`` could wait up to the SMSC's delayed ACK (tens of ms).

A message goes out as one ``submit_sm`` per part (UDH concatenation, ``esm_class`` 0x40), each with
``registered_delivery`` 1. Parts already accepted are remembered per message for the process's life, so
a retry after a bind dropped mid-message sends only the missing parts.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Any

import smpp34
from prometheus_client import Counter, Gauge

from postwire_platform.clock import Clock, utcnow
from postwire_sms.receipts import receipt_key
from postwire_sms.segments import wire_parts

from .carrier import (
    Expired,
    PermanentCarrierError,
    RouteUnavailable,
    SubmitRequest,
    SubmitResult,
    TransientCarrierError,
)
from .gate import OTP, STANDARD, PriorityGate
from .nodelay import nodelay_to
from .routes import SmppRoute

log = logging.getLogger(__name__)

DeliverHandler = Callable[[str, smpp34.DeliverSmEvent], Awaitable[None]]
"""Called with (route name, event) for every receipt and MO a bind receives."""

BINDS_UP = Gauge("postwire_smpp_binds_up", "SMPP binds currently bound", ["route"])
SUBMITS = Counter("postwire_smpp_submits_total", "submit_sm by outcome", ["route", "outcome"])
IN_HAND = Gauge("postwire_smpp_receipts_in_hand",
                "deliver_sm received (acknowledged to the SMSC) and not yet handled", ["route"])

# command_status values that mean "not now" rather than "never" (SMPP 3.4 section 5.1.3)
TRANSIENT_STATUS: dict[int, str] = {
    0x08: "ESME_RSYSERR", 0x14: "ESME_RMSGQFUL", 0x58: "ESME_RTHROTTLED", 0x64: "ESME_RX_T_APPN",
    0x04: "ESME_RINVBNDSTS", 0xFF: "ESME_RUNKNOWNERR",
}
PERMANENT_STATUS: dict[int, str] = {
    0x0A: "invalid_source", 0x0B: "invalid_destination", 0x01: "invalid_message_length",
    0x45: "submit_failed", 0x66: "rejected", 0x61: "invalid_schedule",
    0x62: "invalid_validity_period",
}
_REMEMBERED = 50_000
_INBOUND_CAPACITY = 16_384
"""Events smpp34 holds for ``next()``: room for the event loop's pauses, never meant to fill (see the
module docstring for what a full queue does to the session)."""


def ton_npi(address: str) -> tuple[int, int, str]:
    """(TON, NPI, address) for SMPP: international digits, or an alphanumeric sender."""
    digits = address.lstrip("+")
    if digits.isdigit():
        return (1, 1, digits) if address.startswith("+") or len(digits) > 8 else (3, 0, digits)
    return 5, 0, address


def udh_reference(message_id: str) -> int:
    """The 8-bit concatenation reference of a message: stable, so a resubmitted part matches."""
    return hashlib.sha256(message_id.encode()).digest()[0]


def validity(request: SubmitRequest) -> str:
    """SMPP absolute time ``YYMMDDhhmmss000+`` of ``expires_at`` (UTC), or "" when none."""
    if request.expires_at is None:
        return ""
    return request.expires_at.astimezone(UTC).strftime("%y%m%d%H%M%S") + "000+"


class Bind:
    """One transceiver session that reconnects itself with exponential backoff and jitter."""

    def __init__(self, name: str, index: int, route: SmppRoute, on_deliver: DeliverHandler) -> None:
        self.name = name
        self.index = index
        self.route = route
        self.gate = PriorityGate(route.window, route.throughput)
        self._on_deliver = on_deliver
        self._smsc: Any = None
        self._client: Any = None
        self._task: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._closing = False
        self.bound = asyncio.Event()
        self.connects = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"smpp-{self.name}-{self.index}")

    async def _run(self) -> None:
        delay = self.route.reconnect_min
        while not self._closing:
            try:
                await self._session()
                delay = self.route.reconnect_min  # it was up: start the backoff afresh
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure to bind or a broken session: back off, retry
                log.warning("smpp bind failed", extra={"route": self.name, "bind": self.index,
                                                        "error": repr(exc), "retry_in": delay})
            finally:
                await self._down()
            if self._closing:
                return
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.route.reconnect_max)

    async def _session(self) -> None:
        route = self.route
        self._client = smpp34.Client(
            route.host, route.port, route.system_id, route.password, bind_type="TRX",
            system_type=route.system_type, window_size=route.window,
            inbound_capacity=_INBOUND_CAPACITY,
            connect_timeout_ms=int(route.connect_timeout * 1000))
        self._smsc = await asyncio.wait_for(self._client.connect(), route.connect_timeout + 1)
        if not await nodelay_to(route.host, route.port):
            log.warning("TCP_NODELAY could not be set on the SMPP bind",
                        extra={"route": self.name, "bind": self.index})
        self.connects += 1
        self.bound.set()
        BINDS_UP.labels(self.name).inc()
        log.info("smpp bound", extra={"route": self.name, "bind": self.index})
        try:
            while True:
                event = await self._smsc.next()
                if isinstance(event, smpp34.Disconnected):
                    log.warning("smpp bind lost", extra={"route": self.name, "bind": self.index})
                    return
                # never wait here: a reader that stops lets smpp34's queue fill (module docstring)
                task = asyncio.create_task(self._deliver(event))
                self._handlers.add(task)
                IN_HAND.labels(self.name).inc()
                task.add_done_callback(self._handled)
        finally:
            BINDS_UP.labels(self.name).dec()

    def _handled(self, task: asyncio.Task[None]) -> None:
        self._handlers.discard(task)
        IN_HAND.labels(self.name).dec()

    async def _deliver(self, event: smpp34.DeliverSmEvent) -> None:
        try:
            await self._on_deliver(self.name, event)
        except Exception:  # a receipt must not take the bind down; the handler logs the details
            log.exception("deliver_sm handling failed", extra={"route": self.name})

    async def _down(self) -> None:
        self.bound.clear()
        self._smsc = None
        client, self._client = self._client, None
        if client is not None:
            try:
                await asyncio.wait_for(client.stop(), 5)
            except Exception as exc:  # already gone; nothing more to release
                log.debug("smpp client stop: %r", exc)

    async def submit(self, **fields: Any) -> Any:
        """``submit_sm`` on this bind; RouteUnavailable when it is not bound."""
        smsc = self._smsc
        if smsc is None or not self.bound.is_set():
            raise RouteUnavailable(f"smpp {self.name}#{self.index} is not bound")
        return await asyncio.wait_for(smsc.submit_sm(**fields), self.route.submit_timeout)

    async def alive(self) -> bool:
        client = self._client
        if client is None:
            return False
        try:
            return bool(await client.is_alive())
        except Exception:  # a client that cannot answer is not alive
            return False

    async def close(self, grace: float = 5.0) -> None:
        """Unbind and stop reconnecting; events already received (acknowledged to the SMSC) are
        still read and handled, for up to ``grace`` seconds."""
        self._closing = True
        smsc = self._smsc
        if smsc is not None:
            try:
                await asyncio.wait_for(smsc.unbind(), 2)
            except Exception as exc:  # the SMSC may be gone already
                log.debug("smpp unbind: %r", exc)
        if self._task is not None:
            # the reader ends by itself at Disconnected, after the buffered events
            await asyncio.wait({self._task}, timeout=grace)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=grace)
        await self._down()


class SmppCarrier:
    """An SMPP route: ``binds`` sessions to one SMSC behind the ``SmsCarrier`` protocol."""

    kind = "smpp"

    def __init__(self, name: str, route: SmppRoute, on_deliver: DeliverHandler,
                 clock: Clock = utcnow) -> None:
        self.name = name
        self.route = route
        self.binds = [Bind(name, i, route, on_deliver) for i in range(route.binds)]
        self._clock = clock
        self._next = 0
        self._progress: OrderedDict[str, dict[int, str]] = OrderedDict()

    def start(self) -> None:
        for bind in self.binds:
            bind.start()

    @property
    def up(self) -> bool:
        return any(b.bound.is_set() for b in self.binds)

    def _pick(self) -> Bind:
        bound = [b for b in self.binds if b.bound.is_set()]
        if not bound:
            raise RouteUnavailable(f"no SMPP bind of route {self.name!r} is up")
        self._next = (self._next + 1) % len(bound)
        return min(bound[self._next:] + bound[:self._next],
                   key=lambda b: b.gate.inflight + b.gate.waiting)

    async def submit(self, request: SubmitRequest) -> SubmitResult:
        """Submit every part not yet accepted; the result names every part's carrier id."""
        coding, parts = wire_parts(request.text, udh_reference(request.message_id))
        done = self._progress.get(request.message_id, {})
        priority = OTP if request.otp else STANDARD
        src_ton, src_npi, source = ton_npi(request.sender)
        dst_ton, dst_npi, destination = ton_npi(request.to)
        tlvs = []
        if self.route.reference_tlv is not None:
            tlvs.append(smpp34.Tlv(self.route.reference_tlv,
                                   request.message_id.encode("ascii") + b"\x00"))
        for n, part in enumerate(parts):
            if n in done:
                continue
            bind = self._pick()
            async with bind.gate.slot(priority):
                if request.expires_at is not None and not done and (
                        self._clock() >= request.expires_at):
                    raise Expired(f"expired at {request.expires_at.isoformat()} before submit")
                if request.before_submit is not None:
                    await request.before_submit()  # after the wait for the slot, however long
                try:
                    resp = await bind.submit(
                        destination_addr=destination, short_message=part.short_message,
                        source_addr=source, source_addr_ton=src_ton, source_addr_npi=src_npi,
                        dest_addr_ton=dst_ton, dest_addr_npi=dst_npi,
                        esm_class=0x40 if part.udh else 0x00, data_coding=coding,
                        registered_delivery=0x01, validity_period=validity(request),
                        priority_flag=1 if request.otp else 0, tlvs=tlvs)
                except (smpp34.SmppError, TimeoutError, OSError) as exc:
                    SUBMITS.labels(self.name, "transient").inc()
                    state = "bound" if await bind.alive() else "lost"
                    raise TransientCarrierError(
                        f"smpp {self.name}: submit of part {n + 1}/{len(parts)} failed "
                        f"({state}): {exc}") from exc
            status = resp.command_status
            if not resp.is_success or not resp.message_id:
                self._remember(request.message_id, done)
                if status in PERMANENT_STATUS:
                    SUBMITS.labels(self.name, "rejected").inc()
                    raise PermanentCarrierError(
                        PERMANENT_STATUS[status], f"SMSC refused part {n + 1}/{len(parts)} "
                        f"with command_status 0x{status:08X}")
                SUBMITS.labels(self.name, "transient").inc()
                raise TransientCarrierError(
                    f"smpp {self.name}: {TRANSIENT_STATUS.get(status, 'command_status')} "
                    f"0x{status:08X}")
            done[n] = str(resp.message_id)
            self._remember(request.message_id, done)
            SUBMITS.labels(self.name, "accepted").inc()
        ids = [done[n] for n in range(len(parts))]
        self._progress.pop(request.message_id, None)
        return SubmitResult(carrier_id=ids[0], part_ids=ids)

    def _remember(self, message_id: str, done: dict[int, str]) -> None:
        if not done:
            return
        self._progress[message_id] = done
        self._progress.move_to_end(message_id)
        while len(self._progress) > _REMEMBERED:
            self._progress.popitem(last=False)

    async def wait_bound(self, timeout: float) -> bool:
        """True once at least one bind is up (start-up readiness, tests)."""
        waits = [asyncio.create_task(b.bound.wait()) for b in self.binds]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        return self.up

    def receipt_keys(self, part_ids: list[str]) -> list[str]:
        """The keys under which the receipts of these parts find their message."""
        return [f"{self.name}:{receipt_key(i, self.route.receipt_ids)}" for i in part_ids]

    async def aclose(self) -> None:
        await asyncio.gather(*(b.close() for b in self.binds))
