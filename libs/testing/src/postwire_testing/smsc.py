"""A local SMSC for tests and benchmarks: a real TCP server speaking real SMPP 3.4 PDUs.

It answers ``bind_transceiver`` (and ``bind_transmitter``/``bind_receiver``), ``enquire_link``,
``unbind`` and ``submit_sm``; it sends delivery receipts as ``deliver_sm`` (``esm_class`` 0x04, the text
form plus the ``receipted_message_id`` and ``message_state`` TLVs) after ``receipt_delay``, in order, in
reverse or shuffled; it sends mobile-originated messages (``send_mo``); and it drops every bind on demand
or after a given number of submits (``drop_binds``, ``drop_after``).

Semantics chosen so tests can assert "nothing lost, nothing sent twice": a submit counts as accepted
when its ``submit_sm_resp`` is written; a dropped bind stops reading first and then closes the socket
after flushing what it wrote (FIN, like an SMSC that goes away cleanly), so every accepted submit's
answer reaches the client. ``drop_binds(abort=True)`` resets the connection instead (RST), losing
answers in flight: the ambiguity no SMPP client can resolve. Receipts stay queued until a
``deliver_sm_resp`` acknowledges them and go to the next bind after a drop, as real SMSCs do. A PDU whose
``command_length`` cannot be right (the stream is out of step) is answered with ``generic_nack``
ESME_RINVCMDLEN and the bind is dropped.

Runs its own event loop in a background thread, so it keeps up with thousands of submits per second
while the test's loop does other work. PDUs are decoded and encoded with ``smpp34``'s codec; the
fixed-size PDUs are packed here with ``struct``::

    async with SmscSimulator(receipt_delay=0.05) as smsc:
        ...  # smsc.port, smsc.count_for(message_id), await smsc.wait_for(lambda s: ...)
"""

from __future__ import annotations

import asyncio
import random
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import smpp34

from .servers import Served

# command ids (SMPP 3.4 section 5.1.2.1)
GENERIC_NACK = 0x80000000
BIND_RECEIVER, BIND_TRANSMITTER, BIND_TRANSCEIVER = 0x00000001, 0x00000002, 0x00000009
SUBMIT_SM, DELIVER_SM, UNBIND, ENQUIRE_LINK = 0x00000004, 0x00000005, 0x00000006, 0x00000015
RESP = 0x80000000
# command_status values
ESME_ROK, ESME_RINVCMDLEN, ESME_RINVCMDID, ESME_RBINDFAIL = 0x00, 0x02, 0x03, 0x0D
ESME_RINVDSTADR, ESME_RTHROTTLED, ESME_RINVPASWD, ESME_RALYBND = 0x0B, 0x58, 0x0E, 0x05
# TLV tags
TLV_RECEIPTED_MESSAGE_ID, TLV_MESSAGE_STATE = 0x001E, 0x0427
MESSAGE_STATE = {"ENROUTE": 1, "DELIVRD": 2, "EXPIRED": 3, "DELETED": 4, "UNDELIV": 5,
                 "ACCEPTD": 6, "UNKNOWN": 7, "REJECTD": 8}

ReceiptOrder = Literal["fifo", "reverse", "shuffle"]
_HEADER = struct.Struct(">IIII")
MAX_PDU = 64 * 1024
"""Longer than any PDU SMPP 3.4 allows (a ``message_payload`` is at most 64 KiB): a framing error."""


def pack(command_id: int, status: int, sequence: int, body: bytes = b"") -> bytes:
    """One PDU: the 16-octet header and ``body``."""
    return _HEADER.pack(16 + len(body), command_id, status, sequence) + body


def c_string(value: str) -> bytes:
    return value.encode("ascii") + b"\x00"


@dataclass(frozen=True)
class Submit:
    """One accepted ``submit_sm`` (a part of a multipart message counts as one)."""

    index: int
    """Position among every accepted submit since start, from 0."""
    message_id: str
    """The id this SMSC gave it (in ``submit_sm_resp`` and in its receipt)."""
    session: int
    source: str
    destination: str
    esm_class: int
    data_coding: int
    registered_delivery: int
    short_message: bytes
    reference: str | None
    """Our message id, when the client sent it in the reference TLV."""
    udh: tuple[int, int, int] | None
    """(reference, total, sequence) of a concatenated part."""
    received_at: datetime

    @property
    def text(self) -> str:
        """The part's text without its UDH (GSM-7 read as ASCII-compatible, UCS-2 decoded)."""
        body = self.short_message
        if self.esm_class & 0x40 and body:
            body = body[1 + body[0]:]
        if self.data_coding == 0x08:
            return body.decode("utf-16-be", errors="replace")
        return body.decode("latin-1")


@dataclass
class _Receipt:
    submit: Submit
    stat: str
    due: float


@dataclass
class _Session:
    number: int
    system_id: str
    writer: asyncio.StreamWriter
    receives: bool
    sequence: int = 0
    dropped: bool = False
    waiting: dict[int, asyncio.Future[int]] = field(default_factory=dict)

    def next_sequence(self) -> int:
        self.sequence = self.sequence % 0x7FFFFFFF + 1
        return self.sequence


def parse_udh(short_message: bytes) -> tuple[int, int, int] | None:
    """The concatenation IE (8-bit 0x00 or 16-bit 0x08 reference) of a UDH, if any."""
    if not short_message:
        return None
    length = short_message[0]
    header = short_message[1:1 + length]
    i = 0
    while i + 1 < len(header):
        iei, iel = header[i], header[i + 1]
        data = header[i + 2:i + 2 + iel]
        if iei == 0x00 and iel == 3:
            return data[0], data[1], data[2]
        if iei == 0x08 and iel == 4:
            return int.from_bytes(data[:2], "big"), data[2], data[3]
        i += 2 + iel
    return None


class SmscSimulator(Served):
    """An SMSC on 127.0.0.1 with knobs for the failures a carrier shows."""

    def __init__(self, *, system_id: str = "postwire", password: str = "secret",
                 receipt_delay: float = 0.05, receipt_order: ReceiptOrder = "fifo",
                 stats: dict[str, str] | None = None, reject_numbers: set[str] | None = None,
                 reference_tlv: int = 0x1400, receipt_tlvs: bool = True,
                 enquire_link_interval: float | None = None, port: int = 0,
                 stat_for: Callable[[Submit], str] | None = None, seed: int = 0) -> None:
        self.system_id = system_id
        self.password = password
        self.receipt_delay = receipt_delay
        self.receipt_order: ReceiptOrder = receipt_order
        self.stats: dict[str, str] = dict(stats or {})
        """Destination (digits, as submitted) → receipt stat; DELIVRD otherwise; ``""``: none."""
        self.reject_numbers: set[str] = set(reject_numbers or ())
        self.stat_for = stat_for
        """Per-submit receipt stat, overriding ``stats``; ``""``: no receipt (see ``send_receipt``)."""
        self.reference_tlv = reference_tlv
        self.receipt_tlvs = receipt_tlvs
        self.enquire_link_interval = enquire_link_interval
        self.refuse_binds = False
        self._port = port
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._submits: list[Submit] = []
        self._rejected: list[tuple[str, int]] = []
        self._receipts: deque[_Receipt] = deque()
        self._acked: list[str] = []
        self._mo_acked = 0
        self._sessions: dict[int, _Session] = {}
        self._bind_count = 0
        self._bind_failures = 0
        self._enquire_links = 0
        self._enquire_link_answers = 0
        self._framing_errors = 0
        self._drop_after: int | None = None
        self._drop_abort = False
        self._throttle = 0
        self._counter = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None

    # reads -----------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("SmscSimulator is not started")
        return self._port

    @property
    def submits(self) -> list[Submit]:
        """Every accepted submit, in arrival order (a snapshot)."""
        with self._lock:
            return list(self._submits)

    @property
    def submit_count(self) -> int:
        with self._lock:
            return len(self._submits)

    @property
    def rejected(self) -> list[tuple[str, int]]:
        """(destination, command_status) of every refused submit."""
        with self._lock:
            return list(self._rejected)

    def count_for(self, reference: str) -> int:
        """Accepted submits (parts included) carrying our message id ``reference``."""
        with self._lock:
            return sum(1 for s in self._submits if s.reference == reference)

    def of(self, reference: str) -> list[Submit]:
        """The accepted submits of one message, in arrival order."""
        with self._lock:
            return [s for s in self._submits if s.reference == reference]

    def counts(self) -> Counter[str | None]:
        """Accepted submits per reference."""
        with self._lock:
            return Counter(s.reference for s in self._submits)

    @property
    def acked_receipts(self) -> list[str]:
        """SMSC message ids whose receipt the client acknowledged, in order."""
        with self._lock:
            return list(self._acked)

    @property
    def pending_receipts(self) -> int:
        with self._lock:
            return len(self._receipts)

    @property
    def binds(self) -> int:
        """Successful binds since start."""
        with self._lock:
            return self._bind_count

    @property
    def bound(self) -> int:
        """Sessions bound right now."""
        with self._lock:
            return sum(1 for s in self._sessions.values() if not s.dropped)

    @property
    def enquire_links(self) -> int:
        """``enquire_link`` PDUs received from clients."""
        with self._lock:
            return self._enquire_links

    @property
    def enquire_link_answers(self) -> int:
        """``enquire_link_resp`` PDUs received (answers to ours)."""
        with self._lock:
            return self._enquire_link_answers

    @property
    def framing_errors(self) -> int:
        """Binds dropped because a PDU's ``command_length`` could not be right."""
        with self._lock:
            return self._framing_errors

    async def wait_for(self, predicate: Callable[[SmscSimulator], bool], timeout: float = 30.0,
                       what: str = "condition") -> None:
        """Poll ``predicate(self)`` until true; TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise TimeoutError(f"SmscSimulator: {what} not met in {timeout}s "
                                   f"({self.submit_count} submits, {self.bound} bound)")
            await asyncio.sleep(0.02)

    # knobs -----------------------------------------------------------------------------------------
    def drop_binds(self, *, abort: bool = False) -> None:
        """Drop every bound session now (see the module docstring for the semantics)."""
        self._call(self._drop_all, abort)

    def drop_after(self, submits: int, *, abort: bool = False) -> None:
        """Drop every bind right after the next ``submits`` accepted submits."""
        with self._lock:
            self._drop_after = len(self._submits) + submits
            self._drop_abort = abort

    def throttle_next(self, n: int) -> None:
        """Answer the next ``n`` submits with ESME_RTHROTTLED (nothing accepted)."""
        with self._lock:
            self._throttle += n

    async def send_mo(self, source: str, destination: str, text: str | bytes, *,
                      data_coding: int = 0, timeout: float = 10.0) -> int:
        """Send a mobile-originated ``deliver_sm`` to a bound session; returns its resp status."""
        body = text if isinstance(text, bytes) else text.encode(
            "utf-16-be" if data_coding == 0x08 else "latin-1")
        future = self._submit_coroutine(self._send_mo(source, destination, body, data_coding))
        status: int = await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        return status

    def send_receipt(self, message_id: str, stat: str = "DELIVRD") -> None:
        """Queue a receipt for the accepted submit ``message_id`` (the SMSC's id) now."""
        with self._lock:
            submit = next(s for s in self._submits if s.message_id == message_id)
            self._receipts.append(_Receipt(submit, stat, time.monotonic()))

    # lifecycle -------------------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> None:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve(ready))
            except BaseException as exc:  # reported to start() through ``failure``
                failure.append(exc)
                ready.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="smsc-simulator", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or failure:
            raise RuntimeError(f"SmscSimulator did not start: {failure}")

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    # internals -------------------------------------------------------------------------------------
    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._loop is None:
            raise RuntimeError("SmscSimulator is not started")
        self._loop.call_soon_threadsafe(fn, *args)

    def _submit_coroutine(self, coro: Any) -> Future[Any]:
        if self._loop is None:
            raise RuntimeError("SmscSimulator is not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    async def _serve(self, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self._port)
        self._port = self._server.sockets[0].getsockname()[1]
        tasks = [asyncio.create_task(self._receipt_loop())]
        if self.enquire_link_interval:
            tasks.append(asyncio.create_task(self._enquire_loop(self.enquire_link_interval)))
        ready.set()
        await self._stopping.wait()
        self._server.close()
        self._drop_all(False)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0.05)

    def _drop_all(self, abort: bool) -> None:
        for session in list(self._sessions.values()):
            self._drop(session, abort)

    def _drop(self, session: _Session, abort: bool) -> None:
        if session.dropped:
            return
        session.dropped = True
        for waiter in session.waiting.values():
            if not waiter.done():
                waiter.set_result(-1)
        if abort:
            session.writer.transport.abort()
        else:
            session.writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session: _Session | None = None
        try:
            while True:
                header = await reader.readexactly(16)
                length, command_id, status, sequence = _HEADER.unpack(header)
                if not 16 <= length <= MAX_PDU:
                    # out of step with the client's framing (a PDU longer than its header says, as
                    # smpp34 1.5.0 writes a refused deliver_sm_resp): say so and drop the bind
                    writer.write(pack(GENERIC_NACK, ESME_RINVCMDLEN, sequence))
                    await writer.drain()
                    with self._lock:
                        self._framing_errors += 1
                    return
                body = await reader.readexactly(length - 16) if length > 16 else b""
                if session is not None and session.dropped:
                    return  # read after the drop: never seen by this SMSC
                if command_id in (BIND_TRANSCEIVER, BIND_TRANSMITTER, BIND_RECEIVER):
                    session = self._bind(writer, command_id, sequence, body) or session
                elif command_id == SUBMIT_SM and session is not None:
                    self._submit(session, sequence, header + body)
                elif command_id == ENQUIRE_LINK:
                    with self._lock:
                        self._enquire_links += 1
                    writer.write(pack(ENQUIRE_LINK | RESP, ESME_ROK, sequence))
                elif command_id == UNBIND:
                    writer.write(pack(UNBIND | RESP, ESME_ROK, sequence))
                    await writer.drain()
                    return
                elif command_id in (DELIVER_SM | RESP, ENQUIRE_LINK | RESP) and session is not None:
                    if command_id == ENQUIRE_LINK | RESP:
                        with self._lock:
                            self._enquire_link_answers += 1
                    waiter = session.waiting.pop(sequence, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(status)
                elif command_id & RESP:
                    continue
                else:
                    writer.write(pack(GENERIC_NACK, ESME_RINVCMDID, sequence))
                if writer.transport.get_write_buffer_size() > 1 << 16:
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if session is not None:
                self._sessions.pop(session.number, None)
                for waiter in session.waiting.values():
                    if not waiter.done():
                        waiter.set_result(-1)
            if not writer.is_closing():
                writer.close()

    def _bind(self, writer: asyncio.StreamWriter, command_id: int, sequence: int,
              body: bytes) -> _Session | None:
        fields = body.split(b"\x00")
        system_id = fields[0].decode("ascii", errors="replace") if fields else ""
        password = fields[1].decode("ascii", errors="replace") if len(fields) > 1 else ""
        status = ESME_ROK
        if self.refuse_binds:
            status = ESME_RBINDFAIL
        elif (system_id, password) != (self.system_id, self.password):
            status = ESME_RINVPASWD
        resp_body = c_string("SMSCSIM") if status == ESME_ROK else b""
        writer.write(pack(command_id | RESP, status, sequence, resp_body))
        with self._lock:
            if status != ESME_ROK:
                self._bind_failures += 1
                return None
            self._bind_count += 1
            number = self._bind_count
        session = _Session(number=number, system_id=system_id, writer=writer,
                           receives=command_id != BIND_TRANSMITTER)
        self._sessions[number] = session
        return session

    def _submit(self, session: _Session, sequence: int, raw: bytes) -> None:
        pdu = smpp34.decode(raw)
        if not isinstance(pdu, smpp34.SubmitSm):
            session.writer.write(pack(SUBMIT_SM | RESP, ESME_RINVCMDID, sequence))
            return
        with self._lock:
            if self._throttle > 0:
                self._throttle -= 1
                self._rejected.append((pdu.destination_addr, ESME_RTHROTTLED))
                refused = ESME_RTHROTTLED
            elif pdu.destination_addr in self.reject_numbers:
                self._rejected.append((pdu.destination_addr, ESME_RINVDSTADR))
                refused = ESME_RINVDSTADR
            else:
                refused = ESME_ROK
        if refused:
            session.writer.write(pack(SUBMIT_SM | RESP, refused, sequence))
            return
        reference = None
        for tlv in pdu.tlvs:
            if tlv.tag == self.reference_tlv:
                reference = tlv.value.split(b"\x00", 1)[0].decode("ascii", errors="replace")
        udh = parse_udh(pdu.short_message) if pdu.esm_class & 0x40 else None
        with self._lock:
            self._counter += 1
            message_id = format(self._counter, "08X")
            submit = Submit(
                index=len(self._submits), message_id=message_id, session=session.number,
                source=pdu.source_addr, destination=pdu.destination_addr, esm_class=pdu.esm_class,
                data_coding=pdu.data_coding, registered_delivery=pdu.registered_delivery,
                short_message=pdu.short_message, reference=reference, udh=udh,
                received_at=datetime.now(UTC))
            self._submits.append(submit)
            stat = (self.stat_for(submit) if self.stat_for is not None
                    else self.stats.get(pdu.destination_addr, "DELIVRD"))
            if pdu.registered_delivery & 0x01 and stat:
                self._receipts.append(_Receipt(submit, stat, time.monotonic() + self.receipt_delay))
            drop = self._drop_after is not None and len(self._submits) >= self._drop_after
            if drop:
                self._drop_after = None
        session.writer.write(pack(SUBMIT_SM | RESP, ESME_ROK, sequence, c_string(message_id)))
        if drop:
            self._drop_all(self._drop_abort)

    def _receiver(self) -> _Session | None:
        live = [s for s in self._sessions.values() if s.receives and not s.dropped]
        return self._random.choice(live) if live else None

    async def _receipt_loop(self) -> None:
        while True:
            await asyncio.sleep(min(0.02, max(self.receipt_delay, 0.001)))
            now = time.monotonic()
            with self._lock:
                due = [r for r in self._receipts if r.due <= now]
                for r in due:
                    self._receipts.remove(r)
            if not due:
                continue
            if self.receipt_order == "reverse":
                due.reverse()
            elif self.receipt_order == "shuffle":
                self._random.shuffle(due)
            await asyncio.gather(*(self._deliver_receipt(r) for r in due))

    async def _deliver_receipt(self, receipt: _Receipt) -> None:
        submit = receipt.submit
        stamp = datetime.now(UTC).strftime("%y%m%d%H%M%S")
        submitted = submit.received_at.strftime("%y%m%d%H%M%S")
        delivered = "001" if receipt.stat == "DELIVRD" else "000"
        err = "000" if receipt.stat == "DELIVRD" else "001"
        text = (f"id:{submit.message_id} sub:001 dlvrd:{delivered} submit date:{submitted} "
                f"done date:{stamp} stat:{receipt.stat} err:{err} text:{submit.text[:20]}")
        tlvs = [smpp34.Tlv(TLV_RECEIPTED_MESSAGE_ID, c_string(submit.message_id)),
                smpp34.Tlv(TLV_MESSAGE_STATE, bytes((MESSAGE_STATE.get(receipt.stat, 7),)))
                ] if self.receipt_tlvs else []
        status = await self._deliver(submit.destination, submit.source, 0x04,
                                     text.encode("latin-1", errors="replace"), 0, tlvs)
        with self._lock:
            if status == ESME_ROK:
                self._acked.append(submit.message_id)
            else:  # no bind, dropped, or refused: try again shortly
                receipt.due = time.monotonic() + max(self.receipt_delay, 0.05)
                self._receipts.append(receipt)

    async def _send_mo(self, source: str, destination: str, body: bytes, data_coding: int) -> int:
        for _ in range(500):
            status = await self._deliver(source, destination, 0x00, body, data_coding, [])
            if status == ESME_ROK:
                with self._lock:
                    self._mo_acked += 1
                return status
            await asyncio.sleep(0.02)
        raise TimeoutError("no bound session took the MO")

    async def _deliver(self, source: str, destination: str, esm_class: int, short_message: bytes,
                       data_coding: int, tlvs: list[smpp34.Tlv]) -> int | None:
        """One deliver_sm to a bound receiving session; its resp status, or None if none answered."""
        session = self._receiver()
        if session is None:
            return None
        sequence = session.next_sequence()
        pdu = smpp34.DeliverSm(source, destination, short_message, esm_class=esm_class,
                               data_coding=data_coding, source_addr_ton=1, source_addr_npi=1,
                               tlvs=tlvs, sequence_number=sequence)
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        session.waiting[sequence] = waiter
        session.writer.write(pdu.encode())
        try:
            status = await asyncio.wait_for(waiter, 10.0)
        except TimeoutError:
            return None
        finally:
            session.waiting.pop(sequence, None)
        return None if status < 0 else status

    async def _enquire_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            for session in list(self._sessions.values()):
                if not session.dropped:
                    sequence = session.next_sequence()
                    waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
                    session.waiting[sequence] = waiter
                    session.writer.write(pack(ENQUIRE_LINK, ESME_ROK, sequence))
