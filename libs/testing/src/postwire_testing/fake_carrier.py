"""A fake HTTP SMS carrier on a real local port, speaking the protocol of ``docs/architecture.md``.

``POST /messages`` with ``Idempotency-Key``; 200 ``{"id", "status": "accepted"}``; the same key again gets
the original answer and records nothing new. After ``delay`` seconds the receipt JSON is POSTed to the
submission's ``callbackUrl``. Knobs: ``fail_next(n, status)``, ``reject_numbers`` (400
``invalid_destination``), ``dlr_stat`` (None: no receipt), ``delay``, ``token`` (checked when set).

Runs uvicorn in a background thread with its own event loop, so it works from sync and async tests::

    async with FakeCarrier() as fake:
        ...  # fake.url, fake.submissions, fake.count_for(message_id)
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
from litestar import Litestar, Request, Response, post

from .servers import Served, ThreadedServer


class Submission(msgspec.Struct, frozen=True, kw_only=True):
    """One accepted message."""

    reference: str
    to: str
    text: str
    sender: str
    carrier_id: str
    callback_url: str | None
    idempotency_key: str | None
    received_at: datetime


class RawRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Every request the carrier saw, answered or not."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: datetime


class ReceiptSent(msgspec.Struct, frozen=True, kw_only=True):
    """A receipt POSTed to a callback URL and what came back (status, or the error)."""

    carrier_id: str
    url: str
    stat: str
    status_code: int | None
    error: str | None = None


class _Body(msgspec.Struct, frozen=True, kw_only=True):
    to: str
    text: str
    reference: str
    sender: str = msgspec.field(default="", name="from")
    callback_url: str | None = msgspec.field(default=None, name="callbackUrl")


_body = msgspec.json.Decoder(_Body)
_encoder = msgspec.json.Encoder()


RECEIPT_ATTEMPTS = 8
"""Tries of one receipt callback (no answer or 5xx is retried with back-off, about 25 s in all)."""


class FakeCarrier(Served):
    """A local carrier that records what it is sent and calls back like a real one."""

    def __init__(self, *, delay: float = 0.05, dlr_stat: str | None = "DELIVRD",
                 reject_numbers: set[str] | None = None, token: str | None = None) -> None:
        self.delay = delay
        self.dlr_stat = dlr_stat
        self.reject_numbers: set[str] = set(reject_numbers or ())
        self.token = token
        self.submissions: list[Submission] = []
        self.requests: list[RawRequest] = []
        self.receipts: list[ReceiptSent] = []
        self._answers: dict[str, tuple[int, bytes]] = {}
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self._server: ThreadedServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    # knobs and reads -------------------------------------------------------------------------------
    def fail_next(self, n: int, status: int = 503) -> None:
        """Answer the next ``n`` submissions with ``status`` (nothing recorded as accepted)."""
        with self._lock:
            self._failures.extend([status] * n)

    @property
    def url(self) -> str:
        """Base URL to use as ``SMS_CARRIER_URL``."""
        if self._server is None:
            raise RuntimeError("FakeCarrier is not started")
        return self._server.url

    def count_for(self, reference: str) -> int:
        """How many accepted submissions carry our message id ``reference``."""
        return sum(1 for s in self.submissions if s.reference == reference)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Poll ``predicate`` until true; TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("FakeCarrier: condition not met in time")
            await asyncio.sleep(0.02)

    # lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Serve on 127.0.0.1 and a free port; return once it accepts connections."""
        self._server = ThreadedServer(self._app())
        self._server.start()

    def stop(self) -> None:
        """Stop serving; pending receipts are cancelled."""
        if self._server is not None:
            self._server.stop()
        self._server = None


    async def _shutdown(self) -> None:
        for task in set(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # the protocol ----------------------------------------------------------------------------------
    def _app(self) -> Litestar:
        @post("/messages")
        async def submit(request: Request[Any, Any, Any]) -> Response[bytes]:
            raw = await request.body()
            status, answer = self._answer(request, raw)
            return Response(answer, status_code=status, media_type="application/json")

        return Litestar(route_handlers=[submit], on_shutdown=[self._shutdown])

    def _answer(self, request: Request[Any, Any, Any], raw: bytes) -> tuple[int, bytes]:
        now = datetime.now(UTC)
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._lock:
            self.requests.append(RawRequest(method=request.method, path=request.url.path,
                                            headers=headers, body=raw, received_at=now))
            if self.token is not None and headers.get("authorization") != f"Bearer {self.token}":
                return 401, _error("unauthorized", "bad token")
            if self._failures:
                status = self._failures.pop(0)
                return status, _error("unavailable", f"fake failure {status}")
            key = headers.get("idempotency-key")
            if key and key in self._answers:
                return self._answers[key]
            try:
                body = _body.decode(raw)
            except msgspec.MsgspecError as exc:
                return 422, _error("invalid_request", str(exc))
            if body.to in self.reject_numbers:
                return 400, _error("invalid_destination", f"{body.to} cannot receive SMS")
            carrier_id = f"fc-{uuid.uuid4().hex}"
            self.submissions.append(Submission(
                reference=body.reference, to=body.to, text=body.text, sender=body.sender,
                carrier_id=carrier_id, callback_url=body.callback_url, idempotency_key=key,
                received_at=now))
            answer = (200, _encoder.encode({"id": carrier_id, "status": "accepted"}))
            if key:
                self._answers[key] = answer
            stat, delay = self.dlr_stat, self.delay
        if stat is not None and body.callback_url:
            task = asyncio.create_task(self._receipt(body, carrier_id, stat, delay, now))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return answer

    async def _receipt(self, body: _Body, carrier_id: str, stat: str, delay: float,
                       submitted: datetime) -> None:
        await asyncio.sleep(delay)
        done = datetime.now(UTC)
        err = "000" if stat == "DELIVRD" else "001"
        text = (f"id:{carrier_id} sub:001 dlvrd:{'001' if stat == 'DELIVRD' else '000'} "
                f"submit date:{submitted:%y%m%d%H%M} done date:{done:%y%m%d%H%M} "
                f"stat:{stat} err:{err} text:{body.text[:20]}")
        payload = {"id": carrier_id, "reference": body.reference, "stat": stat, "err": err,
                   "submitDate": submitted.isoformat(), "doneDate": done.isoformat(),
                   "receipt": text}
        url = body.callback_url or ""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=10.0)
        # like a real carrier, a receipt the callback did not take (no answer or 5xx) is retried
        pause = 0.5
        for attempt in range(1, RECEIPT_ATTEMPTS + 1):
            try:
                response = await self._client.post(url, content=_encoder.encode(payload),
                                                   headers={"Content-Type": "application/json"})
                sent = ReceiptSent(carrier_id=carrier_id, url=url, stat=stat,
                                   status_code=response.status_code)
                if response.status_code < 500:
                    break
            except httpx.HTTPError as exc:
                sent = ReceiptSent(carrier_id=carrier_id, url=url, stat=stat, status_code=None,
                                   error=repr(exc))
            if attempt < RECEIPT_ATTEMPTS:
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
        self.receipts.append(sent)


def _error(code: str, message: str) -> bytes:
    return _encoder.encode({"error": code, "message": message})
