"""The sandbox carrier for test keys: answers like the HTTP carrier and posts receipts like one.

Magic recipients (``docs/architecture.md``) pick the outcome; everything else is accepted and gets a
DELIVRD receipt after ``dlr_delay``. Idempotent on our message id: a resubmission returns the same carrier
id and sends no second receipt. Receipts are tracked tasks, awaited briefly and cancelled on ``aclose``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from typing import TypeVar

import httpx
import msgspec

from postwire_platform.callbacks import call_back

from .carrier import PermanentCarrierError, SubmitRequest, SubmitResult, TransientCarrierError

log = logging.getLogger(__name__)
V = TypeVar("V")

REJECTED = "+15005550001"
UNDELIVERED = "+15005550002"
SLOW = "+15005550003"
SILENT = "+15005550004"
FLAKY = "+15005550005"

SLOW_DELAY = 10.0
FLAKY_FAILURES = 2
_REMEMBERED = 100_000


class Receipt(msgspec.Struct, frozen=True, kw_only=True):
    """The receipt JSON a carrier POSTs to ``callbackUrl``."""

    id: str
    reference: str
    stat: str
    err: str
    submit_date: str = msgspec.field(name="submitDate")
    done_date: str = msgspec.field(name="doneDate")
    receipt: str


def _smpp_date(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%y%m%d%H%M%S")


def build_receipt(carrier_id: str, reference: str, stat: str, text: str, submitted: datetime,
                  done: datetime) -> Receipt:
    """A receipt with the JSON fields and the SMPP text form, as carriers send them."""
    err = "000" if stat == "DELIVRD" else "001"
    delivered = "001" if stat == "DELIVRD" else "000"
    smpp = (f"id:{carrier_id} sub:001 dlvrd:{delivered} submit date:{_smpp_date(submitted)} "
            f"done date:{_smpp_date(done)} stat:{stat} err:{err} text:{text[:20]}")
    return Receipt(id=carrier_id, reference=reference, stat=stat, err=err,
                   submit_date=submitted.isoformat(), done_date=done.isoformat(), receipt=smpp)


class SandboxCarrier:
    """In-process carrier for test keys; never reaches a handset."""

    kind = "sandbox"

    def __init__(self, *, dlr_delay: float = 0.2, slow_delay: float = SLOW_DELAY,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._dlr_delay = dlr_delay
        self._slow_delay = slow_delay
        self._client = httpx.AsyncClient(timeout=10.0, transport=transport)
        self._accepted: OrderedDict[str, str] = OrderedDict()
        self._attempts: OrderedDict[str, int] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._encoder = msgspec.json.Encoder()

    async def submit(self, request: SubmitRequest) -> SubmitResult:
        """Accept, refuse or fail according to the magic recipient."""
        if request.before_submit is not None:
            await request.before_submit()
        known = self._accepted.get(request.message_id)
        if known is not None:
            return SubmitResult(carrier_id=known)
        if request.to == REJECTED:
            raise PermanentCarrierError("invalid_destination", "sandbox: the number does not exist")
        if request.to == FLAKY:
            tries = self._attempts.get(request.message_id, 0) + 1
            _remember(self._attempts, request.message_id, tries)
            if tries <= FLAKY_FAILURES:
                raise TransientCarrierError(f"sandbox: carrier unavailable (attempt {tries})")
        carrier_id = f"sbx-{uuid.uuid4().hex}"
        _remember(self._accepted, request.message_id, carrier_id)
        plan = self._plan(request.to)
        if plan is not None:
            stat, delay = plan
            task = asyncio.create_task(self._send_receipt(request, carrier_id, stat, delay),
                                       name=f"sandbox-dlr-{request.message_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return SubmitResult(carrier_id=carrier_id)

    def _plan(self, to: str) -> tuple[str, float] | None:
        if to == SILENT:
            return None
        if to == UNDELIVERED:
            return "UNDELIV", self._dlr_delay
        if to == SLOW:
            return "DELIVRD", self._slow_delay
        return "DELIVRD", self._dlr_delay

    async def _send_receipt(self, request: SubmitRequest, carrier_id: str, stat: str,
                            delay: float) -> None:
        submitted = datetime.now(UTC)
        await asyncio.sleep(delay)
        receipt = build_receipt(carrier_id, request.message_id, stat, request.text, submitted,
                                datetime.now(UTC))
        body = self._encoder.encode(receipt)
        await call_back(lambda: self._client.post(
            request.callback_url, content=body, headers={"Content-Type": "application/json"}),
            what="receipt", message_id=request.message_id)

    @property
    def pending_receipts(self) -> int:
        """Receipts scheduled and not yet sent."""
        return len(self._tasks)

    async def aclose(self, grace: float = 1.0) -> None:
        """Let due receipts go out for up to ``grace`` seconds, cancel the rest, close the client."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        pending = set(self._tasks)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        await self._client.aclose()


def _remember(store: OrderedDict[str, V], key: str, value: V) -> None:
    store[key] = value
    store.move_to_end(key)
    while len(store) > _REMEMBERED:
        store.popitem(last=False)
