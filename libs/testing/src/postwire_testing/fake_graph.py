"""A fake Meta Graph API (WhatsApp Cloud API) on a real local port, for tests and benchmarks.

``POST /{version}/{phone_number_id}/messages`` answers like Meta (``protocols.md`` §1): 200
``{"messaging_product", "contacts": [{input, wa_id}], "messages": [{"id": "wamid.…"}]}``, or a
Meta-shaped ``{"error": {message, type, code, error_data, fbtrace_id}}``. Every request is recorded
(path with the version, phone number id, bearer token, JSON body). Accepted messages get status
notifications (``sent``, ``delivered``, ``read`` by default; ``status_delay`` seconds apart) POSTed to
``webhook_url`` as Meta does: the ``whatsapp_business_account`` envelope, signed with
``X-Hub-Signature-256`` over the raw bytes with ``app_secret``.

The payloads are written out here by hand from the reference, not built with ``postwire_whatsapp``, so
the fake checks Postwire's parsing instead of agreeing with it. Knobs::

    graph.fail_recipient("15550001111", 131047)            # every send to it: sync error 131047
    graph.fail_recipient("15550002222", 130429, times=1)   # the first send only
    graph.fail_recipient("15550003333", 131026, asynchronous=True)  # accepted, then a failed status
    graph.statuses_for["15550004444"] = ["read", "delivered"]       # out of order (no "sent")
    graph.fail_next(2, status=500)                          # the next two requests: HTTP 500
    graph.tokens["106540352242922"] = "EAAG…"               # only this token for that number (else 190)
    await graph.post_inbound("16505551234", "STOP")          # a signed inbound message notification

Status notifications come from one scheduler task (a heap of due times), so thousands of messages cost
one timer, and ``batch_size`` statuses of one number may share a notification, as Meta sometimes does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import heapq
import hmac
import itertools
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
from litestar import Litestar, Request, Response, post
from litestar.params import FromPath

from postwire_platform.outbound import SpreadTransport

from .servers import Served, ThreadedServer

DEFAULT_STATUSES: tuple[str, ...] = ("sent", "delivered", "read")
DISPLAY_NUMBER = "15550783881"
_ATTEMPTS = 4

_json = msgspec.json.Encoder()
_HTTP_STATUS: dict[int, int] = {190: 401, 1: 500, 2: 503, 131000: 500, 131016: 503}
_TITLES: dict[int, str] = {
    190: "Error validating access token: Session has expired",
    131047: "Re-engagement message",
    131026: "Message undeliverable",
    130429: "Rate limit hit",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    132001: "Template name does not exist in the translation",
    131048: "Spam rate limit hit",
    131049: "Meta chose not to deliver",
    131000: "Something went wrong",
}
_DETAILS: dict[int, str] = {
    131047: "More than 24 hours have passed since the recipient last replied to the sender number.",
    131026: "Unable to deliver message. Reasons can include: the recipient phone number is not a "
            "WhatsApp phone number.",
    130429: "Cloud API message throughput has been reached.",
    131056: "Too many messages sent from the sender phone number to the same recipient phone "
            "number in a short period of time.",
    132001: "template name (order_update) does not exist in en_US",
}


@dataclass(frozen=True)
class GraphRequest:
    """One request to ``/{version}/{phone_number_id}/messages``, answered or not."""

    path: str
    version: str
    phone_number_id: str
    token: str | None
    headers: dict[str, str]
    body: Any
    raw: bytes
    received_at: datetime

    @property
    def to(self) -> str | None:
        return self.body.get("to") if isinstance(self.body, dict) else None


@dataclass(frozen=True)
class Accepted:
    """A message the fake accepted, with its wamid."""

    wamid: str
    to: str
    phone_number_id: str
    token: str | None
    body: dict[str, Any]
    callback_data: str | None
    received_at: datetime


@dataclass(frozen=True)
class Notification:
    """A notification POSTed to ``webhook_url`` and what came back (status, or the error)."""

    payload: dict[str, Any]
    raw: bytes
    signature: str
    status_code: int | None
    error: str | None = None

    @property
    def statuses(self) -> list[dict[str, Any]]:
        return [s for entry in self.payload.get("entry", []) for change in entry.get("changes", [])
                for s in change.get("value", {}).get("statuses", [])]


@dataclass
class _Failure:
    code: int
    remaining: int | None
    http_status: int | None
    asynchronous: bool


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    phone_number_id: str = field(compare=False)
    status: dict[str, Any] = field(compare=False)


def error_body(code: int, message: str | None = None, *, details: str | None = None) -> dict[str, Any]:
    """Meta's error object for ``code``."""
    title = message or _TITLES.get(code, "Unknown error")
    return {"error": {
        "message": f"(#{code}) {title}", "type": "OAuthException", "code": code,
        "error_data": {"messaging_product": "whatsapp",
                       "details": details or _DETAILS.get(code, title)},
        "fbtrace_id": "A" + uuid.uuid4().hex[:22],
    }}


def signature(app_secret: str, raw: bytes) -> str:
    """``X-Hub-Signature-256`` of ``raw``."""
    return "sha256=" + hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()


def new_wamid() -> str:
    return "wamid." + base64.b64encode(b"\x15\x02\x00\x11\x18\x12" + uuid.uuid4().bytes).decode()


class FakeGraph(Served):
    """A local Graph API that records sends and calls back with signed notifications."""

    def __init__(self, *, webhook_url: str | None = None, app_secret: str = "fake-app-secret",
                 status_delay: float = 0.05, statuses: tuple[str, ...] = DEFAULT_STATUSES,
                 batch_size: int = 1, display_phone_number: str = DISPLAY_NUMBER) -> None:
        self.webhook_url = webhook_url
        self.app_secret = app_secret
        self.status_delay = status_delay
        self.statuses = tuple(statuses)
        self.batch_size = max(1, batch_size)
        self.display_phone_number = display_phone_number
        self.tokens: dict[str, str] = {}
        """phone_number_id → the only token accepted for it (others get error 190)."""
        self.statuses_for: dict[str, list[str]] = {}
        """wa_id → the statuses to send for messages to it, in this order."""
        self.requests: list[GraphRequest] = []
        self.accepted: list[Accepted] = []
        self.notifications: list[Notification] = []
        self._failures: dict[str, _Failure] = {}
        self._raw_failures: list[int] = []
        self._lock = threading.Lock()
        self._server: ThreadedServer | None = None
        self._heap: list[_Due] = []
        self._seq = itertools.count()
        self._wake: asyncio.Event | None = None
        self._scheduler: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._posting: set[asyncio.Task[None]] = set()

    # knobs -----------------------------------------------------------------------------------------
    def fail_recipient(self, to: str, code: int, *, times: int | None = None,
                       http_status: int | None = None, asynchronous: bool = False) -> None:
        """Answer sends to ``to`` (a wa_id) with error ``code`` (``times`` times; None: always).

        ``asynchronous``: accept the send, then deliver the error in a ``failed`` status notification.
        """
        with self._lock:
            self._failures[_digits(to)] = _Failure(code, times, http_status, asynchronous)

    def fail_next(self, n: int, status: int = 500) -> None:
        """Answer the next ``n`` requests with a bare HTTP ``status`` (no Meta error body)."""
        with self._lock:
            self._raw_failures.extend([status] * n)

    # reads -----------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The base URL to configure as the Graph API URL (``WHATSAPP_GRAPH_URL``)."""
        if self._server is None:
            raise RuntimeError("FakeGraph is not started")
        return self._server.url

    def sent_to(self, to: str) -> list[Accepted]:
        """Accepted messages to ``to`` (a wa_id or E.164)."""
        wa = _digits(to)
        with self._lock:
            return [a for a in self.accepted if a.to == wa]

    def requests_to(self, to: str) -> list[GraphRequest]:
        wa = _digits(to)
        with self._lock:
            return [r for r in self.requests if _digits(r.to or "") == wa]

    def statuses_sent(self, wamid: str) -> list[str]:
        """The statuses notified for ``wamid`` so far, in the order they were POSTed."""
        with self._lock:
            return [s["status"] for n in self.notifications for s in n.statuses if s["id"] == wamid]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        """Poll ``predicate`` until true; TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("FakeGraph: condition not met in time")
            await asyncio.sleep(0.02)

    # notifications the test sends ------------------------------------------------------------------
    def inbound_payload(self, sender: str, text: str, *, phone_number_id: str = "106540352242922",
                        name: str = "Test Contact", wamid: str | None = None,
                        timestamp: int | None = None) -> dict[str, Any]:
        """The notification of a text message from ``sender`` (a wa_id) to ``phone_number_id``."""
        wa = _digits(sender)
        return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
            "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": self.display_phone_number,
                             "phone_number_id": phone_number_id},
                "contacts": [{"profile": {"name": name}, "wa_id": wa}],
                "messages": [{"from": wa, "id": wamid or new_wamid(),
                              "timestamp": str(timestamp or int(time.time())), "type": "text",
                              "text": {"body": text}}],
            }}]}]}

    async def post_inbound(self, sender: str, text: str, **kwargs: Any) -> httpx.Response:
        """POST a signed inbound text message notification to ``webhook_url``."""
        return await self.post_notification(self.inbound_payload(sender, text, **kwargs))

    async def post_notification(self, payload: dict[str, Any], *,
                                signature_header: str | None = None) -> httpx.Response:
        """POST ``payload`` to ``webhook_url``, signed (or with ``signature_header`` as given)."""
        if self.webhook_url is None:
            raise RuntimeError("FakeGraph has no webhook_url")
        raw = _json.encode(payload)
        sig = signature(self.app_secret, raw) if signature_header is None else signature_header
        async with httpx.AsyncClient(timeout=10.0) as client:
            return await client.post(self.webhook_url, content=raw, headers={
                "Content-Type": "application/json", "X-Hub-Signature-256": sig})

    # lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Serve on 127.0.0.1 and a free port; return once it accepts connections."""
        self._server = ThreadedServer(self._app())
        self._server.start()

    def stop(self) -> None:
        """Stop serving; notifications not yet due are dropped."""
        if self._server is not None:
            self._server.stop()
        self._server = None

    async def _startup(self) -> None:
        self._wake = asyncio.Event()
        # small pools: httpcore's walk of one pool of 50 per request was half this fake's CPU in
        # the bench's WhatsApp phase (the bench's process shares the machine with the system)
        self._client = httpx.AsyncClient(timeout=10.0,
                                         transport=SpreadTransport.of_http(max_connections=50))
        self._scheduler = asyncio.create_task(self._run_scheduler(), name="fake-graph-statuses")

    async def _shutdown(self) -> None:
        tasks = [t for t in (self._scheduler, *self._posting) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    # the API ---------------------------------------------------------------------------------------
    def _app(self) -> Litestar:
        @post("/{version:str}/{phone_number_id:str}/messages")
        async def send(request: Request[Any, Any, Any], version: FromPath[str],
                       phone_number_id: FromPath[str]) -> Response[bytes]:
            raw = await request.body()
            status, answer = self._answer(request, version, phone_number_id, raw)
            return Response(_json.encode(answer), status_code=status,
                            media_type="application/json")

        return Litestar(route_handlers=[send], on_startup=[self._startup],
                        on_shutdown=[self._shutdown], openapi_config=None, logging_config=None)

    def _answer(self, request: Request[Any, Any, Any], version: str, phone_number_id: str,
                raw: bytes) -> tuple[int, dict[str, Any]]:
        now = datetime.now(UTC)
        headers = {k.lower(): v for k, v in request.headers.items()}
        auth = headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else None
        try:
            body = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            body = None
        with self._lock:
            self.requests.append(GraphRequest(
                path=request.url.path, version=version, phone_number_id=phone_number_id,
                token=token, headers=headers, body=body, raw=raw, received_at=now))
            if self._raw_failures:
                status = self._raw_failures.pop(0)
                return status, {"error": "fake failure"}
            expected = self.tokens.get(phone_number_id)
            if token is None or (expected is not None and token != expected):
                return 401, error_body(190)
            if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp" \
                    or not body.get("to") or body.get("type") not in ("text", "template"):
                return 400, error_body(100, "Invalid parameter",
                                       details="messaging_product, to and type are required")
            to = _digits(str(body["to"]))
            failure = self._failures.get(to)
            if failure is not None:
                if failure.remaining is not None:
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        del self._failures[to]
                if not failure.asynchronous:
                    return (failure.http_status or _HTTP_STATUS.get(failure.code, 400),
                            error_body(failure.code))
            wamid = new_wamid()
            callback = body.get("biz_opaque_callback_data")
            self.accepted.append(Accepted(wamid=wamid, to=to, phone_number_id=phone_number_id,
                                          token=token, body=body, callback_data=callback,
                                          received_at=now))
            plan = (["sent", "failed"] if failure is not None and failure.asynchronous
                    else list(self.statuses_for.get(to, self.statuses)))
            error_code = failure.code if failure is not None and failure.asynchronous else None
            self._schedule(phone_number_id, wamid, to, callback, plan, error_code)
        return 200, {"messaging_product": "whatsapp",
                     "contacts": [{"input": str(body["to"]), "wa_id": to}],
                     "messages": [{"id": wamid}]}

    # status notifications --------------------------------------------------------------------------
    def _schedule(self, phone_number_id: str, wamid: str, to: str, callback: str | None,
                  plan: list[str], error_code: int | None) -> None:
        if self.webhook_url is None or not plan:
            return
        start = time.monotonic()
        for step, status in enumerate(plan, start=1):
            item: dict[str, Any] = {"id": wamid, "status": status,
                                    "timestamp": str(int(time.time())), "recipient_id": to}
            if callback:
                item["biz_opaque_callback_data"] = callback
            if status == "sent":
                item["conversation"] = {"id": uuid.uuid4().hex, "origin": {"type": "utility"}}
                item["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "utility"}
            if status == "failed" and error_code is not None:
                err = error_body(error_code)["error"]
                item["errors"] = [{"code": error_code, "title": _TITLES.get(error_code, "Error"),
                                   "message": _TITLES.get(error_code, "Error"),
                                   "error_data": {"details": err["error_data"]["details"]}}]
            heapq.heappush(self._heap, _Due(start + step * self.status_delay, next(self._seq),
                                            phone_number_id, item))
        if self._wake is not None:
            self._wake.set()

    async def _run_scheduler(self) -> None:
        assert self._wake is not None
        while True:
            with self._lock:
                now = time.monotonic()
                due: list[_Due] = []
                while self._heap and self._heap[0].at <= now:
                    due.append(heapq.heappop(self._heap))
                wait = self._heap[0].at - now if self._heap else None
                self._wake.clear()
            if due:
                by_number: dict[str, list[dict[str, Any]]] = defaultdict(list)
                for item in due:
                    by_number[item.phone_number_id].append(item.status)
                for number, items in by_number.items():
                    for i in range(0, len(items), self.batch_size):
                        # one task per notification, so a slow receiver does not hold back others;
                        # their order is kept within a message by the due times (status_delay apart)
                        self._post_soon(number, items[i:i + self.batch_size])
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    def _post_soon(self, phone_number_id: str, statuses: list[dict[str, Any]]) -> None:
        task = asyncio.create_task(self._post_statuses(phone_number_id, statuses))
        self._posting.add(task)
        task.add_done_callback(self._posting.discard)

    async def _post_statuses(self, phone_number_id: str, statuses: list[dict[str, Any]]) -> None:
        payload = {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
            "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": self.display_phone_number,
                             "phone_number_id": phone_number_id},
                "statuses": statuses}}]}]}
        raw = _json.encode(payload)
        sig = signature(self.app_secret, raw)
        assert self._client is not None and self.webhook_url is not None
        for attempt in range(1, _ATTEMPTS + 1):  # Meta retries a notification that was not answered 200
            try:
                response = await self._client.post(self.webhook_url, content=raw, headers={
                    "Content-Type": "application/json", "X-Hub-Signature-256": sig})
                sent = Notification(payload, raw, sig, response.status_code)
            except httpx.HTTPError as exc:
                sent = Notification(payload, raw, sig, None, repr(exc))
            if sent.status_code == 200 or attempt == _ATTEMPTS:
                break
            await asyncio.sleep(0.2 * attempt)
        with self._lock:
            self.notifications.append(sent)


def _digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


def main(argv: list[str] | None = None) -> None:
    """Serve a FakeGraph in its own process (for benchmarks): ``python -m postwire_testing.fake_graph``."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--webhook-url", default=None)
    parser.add_argument("--app-secret", default="fake-app-secret")
    parser.add_argument("--status-delay", type=float, default=0.05)
    parser.add_argument("--statuses", default=",".join(DEFAULT_STATUSES),
                        help="comma-separated statuses to notify per message, in order ('' for none)")
    parser.add_argument("--batch-size", type=int, default=1)
    args = parser.parse_args(argv)
    graph = FakeGraph(webhook_url=args.webhook_url, app_secret=args.app_secret,
                      status_delay=args.status_delay,
                      statuses=tuple(s for s in args.statuses.split(",") if s),
                      batch_size=args.batch_size)
    graph._server = ThreadedServer(graph._app(), port=args.port)
    graph._server.start()
    print(graph.url, flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    graph.stop()


if __name__ == "__main__":
    main()
