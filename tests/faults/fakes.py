"""The outside world of the fault suite: a carrier that can fail or hang, and a customer endpoint that
can go down, both real local HTTP servers (``postwire_testing``'s fakes with a few more knobs).
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
from litestar import Litestar, Request, Response, post

from postwire_testing.fake_carrier import FakeCarrier, ReceiptSent, _Body
from postwire_testing.fake_graph import FakeGraph, Notification, signature
from postwire_testing.receiver import ReceivedRequest, WebhookReceiver
from postwire_testing.smtp_sink import SmtpSink

RECEIPT_RETRY_SECONDS = 240.0
"""How long the carrier (and Meta) keep retrying a callback nobody accepted (the real ones retry for
hours, Meta for days)."""


class FaultyCarrier(FakeCarrier):
    """``FakeCarrier`` plus time windows of 5xx answers or hung requests, and receipts retried the way
    real carriers retry them (until a 2xx), so a provider-ingest that is down loses nothing.

    Counting stays the base class's: ``count_for(message_id)`` is the number of submissions the
    carrier *accepted* for our message id, a resubmission with the same ``Idempotency-Key`` included
    only once, as the carrier protocol in ``docs/architecture.md`` promises.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fail_until = 0.0
        self._fail_status = 503
        self._hang_until = 0.0
        self._hang_seconds = 0.0
        self.failed_answers = 0
        self.hung_answers = 0

    def fail_for(self, seconds: float, status: int = 503) -> None:
        """Answer every submission with ``status`` for the next ``seconds``."""
        self._fail_status = status
        self._fail_until = time.monotonic() + seconds

    def hang_for(self, seconds: float, each: float) -> None:
        """For the next ``seconds``, hold every submission ``each`` seconds before handling it (the
        dispatcher's timeout fires first; the submission is still accepted afterwards, as a slow
        carrier would)."""
        self._hang_seconds = each
        self._hang_until = time.monotonic() + seconds

    def healthy(self) -> None:
        """End any failure or hang window now."""
        self._fail_until = self._hang_until = 0.0

    def _app(self) -> Litestar:
        @post("/messages")
        async def submit(request: Request[Any, Any, Any]) -> Response[bytes]:
            raw = await request.body()
            now = time.monotonic()
            if now < self._fail_until:
                self.failed_answers += 1
                return Response(b'{"error":"unavailable","message":"carrier down"}',
                                status_code=self._fail_status, media_type="application/json")
            if now < self._hang_until:
                self.hung_answers += 1
                await asyncio.sleep(self._hang_seconds)
            status, answer = self._answer(request, raw)
            return Response(answer, status_code=status, media_type="application/json")

        return Litestar(route_handlers=[submit], on_shutdown=[self._shutdown])

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
            self._client = httpx.AsyncClient(timeout=5.0)
        deadline = time.monotonic() + RECEIPT_RETRY_SECONDS
        status: int | None = None
        error: str | None = None
        pause = 0.25
        while time.monotonic() < deadline:
            try:
                response = await self._client.post(url, json=payload)
                status, error = response.status_code, None
                if response.status_code < 300 or response.status_code in (400, 401, 403, 422):
                    break  # delivered, or refused for good: retrying would not help
            except httpx.HTTPError as exc:
                status, error = None, repr(exc)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)
        self.receipts.append(ReceiptSent(carrier_id=carrier_id, url=url, stat=stat,
                                         status_code=status, error=error))


class FaultyGraph(FakeGraph):
    """``FakeGraph`` whose status notifications are retried until answered 200, as Meta retries them,
    so a provider-ingest that is down or refusing (503 while RabbitMQ is away) loses nothing.

    ``count_for(message_id)``: how many sends the Graph API accepted for our message id (Postwire puts
    it in ``biz_opaque_callback_data``).
    """

    def count_for(self, message_id: str) -> int:
        return sum(1 for a in list(self.accepted) if a.callback_data == message_id)

    async def _post_statuses(self, phone_number_id: str, statuses: list[dict[str, Any]]) -> None:
        payload = {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
            "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": self.display_phone_number,
                             "phone_number_id": phone_number_id},
                "statuses": statuses}}]}]}
        raw = msgspec.json.encode(payload)
        sig = signature(self.app_secret, raw)
        assert self._client is not None and self.webhook_url is not None
        deadline = time.monotonic() + RECEIPT_RETRY_SECONDS
        pause = 0.25
        while True:
            try:
                response = await self._client.post(self.webhook_url, content=raw, headers={
                    "Content-Type": "application/json", "X-Hub-Signature-256": sig})
                sent = Notification(payload, raw, sig, response.status_code)
            except httpx.HTTPError as exc:
                sent = Notification(payload, raw, sig, None, repr(exc))
            if sent.status_code == 200 or time.monotonic() > deadline:
                break
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)
        with self._lock:
            self.notifications.append(sent)


MESSAGE_ID_HEADER = re.compile(rb"^X-Postwire-Message-ID:\s*(\S+)", re.MULTILINE | re.IGNORECASE)


def sink_count(sink: SmtpSink) -> dict[str, int]:
    """How many mails the SMTP sink accepted per Postwire message id (``X-Postwire-Message-ID``)."""
    counts: dict[str, int] = {}
    for mail in sink.messages:
        head = mail.data.split(b"\r\n\r\n", 1)[0].replace(b"\r\n", b"\n")
        for match in MESSAGE_ID_HEADER.finditer(head):
            key = match.group(1).decode()
            counts[key] = counts.get(key, 0) + 1
    return counts


class Customer:
    """A tenant's webhook endpoint that can go down (connection refused) and come back on its port.

    ``requests`` holds every request received across its ups and downs.
    """

    def __init__(self) -> None:
        self._receiver: WebhookReceiver | None = None
        self._earlier: list[ReceivedRequest] = []
        self._port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/hook"

    @property
    def requests(self) -> list[ReceivedRequest]:
        current = self._receiver.requests if self._receiver is not None else []
        return [*self._earlier, *current]

    def up(self) -> None:
        """Serve (again, on the same port)."""
        assert self._receiver is None
        self._receiver = WebhookReceiver(port=self._port)
        self._receiver.start()
        self._port = int(self._receiver.url.split(":")[2].split("/")[0])

    def down(self) -> None:
        """Stop serving: deliveries get connection refused until ``up``."""
        if self._receiver is not None:
            self._receiver.stop()  # first: a request answered while stopping is still recorded
            self._earlier.extend(self._receiver.requests)
            self._receiver = None

    def respond(self, status: int, *, times: int) -> None:
        """Answer the next ``times`` requests with ``status`` (then 200 again)."""
        assert self._receiver is not None
        self._receiver.respond(status, times=times)

    def __enter__(self) -> Customer:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()
