"""A customer's webhook endpoint for tests: a real local HTTP server that records every request.

Litestar served by uvicorn on 127.0.0.1 (a free port) in a background thread with its own event loop,
so deliveries arrive while the test's loop awaits something else. Every request is recorded (method,
path, lower-cased headers, the raw body bytes, the time); answers are 200 unless told otherwise::

    async with WebhookReceiver() as hooks:
        hooks.respond(500, times=2)          # down for the next two requests, then 200 again
        ...                                  # create an endpoint with hooks.url
        [first] = await hooks.wait_for(lambda reqs: len(reqs) >= 1)
        payload = hooks.verify(secret, first)  # Standard Webhooks signature check

``hold()`` makes every request wait (a receiver that hangs) until ``release()``; stopping and starting
the same receiver again serves on the same port (a receiver that was down for a while).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from litestar import Litestar, Request, Response, route
from litestar.enums import HttpMethod

from .servers import Served, ThreadedServer

_METHODS = [HttpMethod.POST, HttpMethod.PUT, HttpMethod.PATCH, HttpMethod.GET, HttpMethod.DELETE]


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the receiver saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: datetime

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class WebhookReceiver(Served):
    """Records webhook deliveries and answers them as told (200 by default)."""

    def __init__(self, *, port: int = 0, path: str = "/hook", status: int = 200) -> None:
        self.path = path
        self.default_status = status
        self._port = port
        self._requests: list[ReceivedRequest] = []
        self._plan: deque[_Answer] = deque()
        self._lock = threading.Lock()
        self._open = threading.Event()
        self._open.set()
        self._server: ThreadedServer | None = None

    # knobs and reads -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Where to deliver, e.g. ``http://127.0.0.1:40123/hook``."""
        if self._server is None or not self._port:
            raise RuntimeError("WebhookReceiver is not started")
        return f"http://127.0.0.1:{self._port}{self.path}"

    @property
    def requests(self) -> list[ReceivedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def respond(self, status: int, *, times: int = 1, headers: dict[str, str] | None = None,
                delay: float = 0.0) -> None:
        """Answer the next ``times`` requests with ``status`` (after ``delay`` seconds), then resume."""
        with self._lock:
            self._plan.extend(_Answer(status, dict(headers or {}), delay) for _ in range(times))

    def hold(self) -> None:
        """Keep every request from now on waiting (recorded, but unanswered) until ``release()``."""
        self._open.clear()

    def release(self) -> None:
        """Answer the held requests and stop holding."""
        self._open.set()

    def clear(self) -> None:
        """Forget recorded requests and pending answers."""
        with self._lock:
            self._requests.clear()
            self._plan.clear()

    async def wait_for(self, predicate: Callable[[list[ReceivedRequest]], bool],
                       timeout: float = 10.0) -> list[ReceivedRequest]:
        """Poll until ``predicate(requests)`` holds and return the requests; TimeoutError after
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.requests
            if predicate(seen):
                return seen
            if time.monotonic() > deadline:
                raise TimeoutError(f"WebhookReceiver: condition not met in {timeout}s "
                                   f"({len(seen)} request(s) received)")
            await asyncio.sleep(0.02)

    def verify(self, secret: str, request: ReceivedRequest | None = None) -> Any:
        """Check ``request``'s (default: the latest) Standard Webhooks signature with ``secret``.

        Returns the parsed payload; raises ``standardwebhooks.WebhookVerificationError`` if the
        signature, headers or timestamp are wrong.
        """
        from standardwebhooks import Webhook  # a test-only dependency, imported where it is used

        if request is None:
            seen = self.requests
            if not seen:
                raise LookupError("no request received")
            request = seen[-1]
        return Webhook(secret).verify(request.body, request.headers)

    def verify_all(self, secret: str, requests: Sequence[ReceivedRequest] | None = None) -> list[Any]:
        """``verify`` every request (default: all received so far)."""
        return [self.verify(secret, r) for r in (self.requests if requests is None else requests)]

    # lifecycle -------------------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> None:
        """Serve on 127.0.0.1; return once it accepts connections."""
        self._server = ThreadedServer(self._app(), lifespan="off", port=self._port)
        self._server.start(timeout)
        self._port = int(self._server.url.rsplit(":", 1)[1])

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving (held requests are released first) and wait for the server thread."""
        self.release()
        if self._server is not None:
            self._server.stop(timeout)
        self._server = None


    # the app ---------------------------------------------------------------------------------------
    def _app(self) -> Litestar:
        @route(["/", "/{rest:path}"], http_method=_METHODS)
        async def receive(request: Request[Any, Any, Any]) -> Response[bytes]:
            body = await request.body()
            seen = ReceivedRequest(
                method=request.method, path=request.url.path,
                headers={k.lower(): v for k, v in request.headers.items()}, body=body,
                received_at=datetime.now(UTC))
            with self._lock:
                self._requests.append(seen)
            while not self._open.is_set():
                await asyncio.sleep(0.02)
            with self._lock:
                answer = self._plan.popleft() if self._plan else _Answer(self.default_status)
            if answer.delay:
                await asyncio.sleep(answer.delay)
            content = b"" if answer.status in (204, 304) else b'{"ok":true}'
            return Response(content, status_code=answer.status, headers=answer.headers,
                            media_type="application/json")

        return Litestar(route_handlers=[receive], logging_config=None, openapi_config=None)
