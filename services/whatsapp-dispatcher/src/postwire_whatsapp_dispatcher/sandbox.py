"""The sandbox for test keys: answers like the Graph API and sends status notifications like Meta.

Nothing reaches Meta. Accepted messages get ``sent``, ``delivered`` and ``read`` notifications,
``status_delay`` seconds apart, POSTed to provider-ingest's ``/v1/webhooks/whatsapp`` and signed with
``WHATSAPP_APP_SECRET``, so they travel the same verified path as Meta's. Magic recipients (wa_id,
i.e. the E.164 number without ``+``) pick other outcomes; see ``docs/architecture.md``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
import uuid
from collections import OrderedDict
from typing import TypeVar

import httpx

from postwire_platform.callbacks import call_back
from postwire_whatsapp import webhooks
from postwire_whatsapp.cloud_api import ErrorData, GraphError

from .graph import GraphRefused, GraphSend, SendResult

log = logging.getLogger(__name__)
V = TypeVar("V")

UNDELIVERABLE = "15005550001"
"""Refused at once with 131026 (not on WhatsApp)."""
OUTSIDE_WINDOW = "15005550002"
"""Text refused with 131047 (outside the 24-hour window); templates are accepted."""
THROTTLED = "15005550003"
"""130429 on the first two attempts, then accepted."""
SENT_ONLY = "15005550004"
"""Accepted, only ``sent`` is ever notified."""
FAILS_LATER = "15005550005"
"""Accepted, then a ``failed`` notification with 131026."""
READ_FIRST = "15005550006"
"""Accepted, then ``read`` is notified before ``delivered`` (as Meta may)."""

THROTTLED_FAILURES = 2
SANDBOX_PHONE_NUMBER_ID = "100000000000000"
DISPLAY_NUMBER = "15550000000"
_REMEMBERED = 100_000


def _error(code: int, title: str, details: str) -> GraphError:
    """A Meta error object as the sandbox answers it."""
    return GraphError(code=code, message=f"(#{code}) {title}", title=title, type="OAuthException",
                      error_data=ErrorData(details=details), fbtrace_id="sandbox")


class SandboxClient:
    """In-process Cloud API for test keys; idempotent on our message id like a resubmission expects."""

    def __init__(self, *, webhook_url: str, app_secret: str, status_delay: float = 0.2,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._webhook_url = webhook_url
        self._app_secret = app_secret
        self._delay = status_delay
        self._client = httpx.AsyncClient(timeout=10.0, transport=transport)
        self._accepted: OrderedDict[str, str] = OrderedDict()
        self._attempts: OrderedDict[str, int] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        if not app_secret:
            log.warning("WHATSAPP_APP_SECRET is empty: sandbox status notifications are not sent")

    async def send(self, request: GraphSend) -> SendResult:
        known = self._accepted.get(request.message_id)
        if known is not None:
            return SendResult(wamid=known, wa_id=request.to)
        to = request.to
        if to == UNDELIVERABLE:
            raise GraphRefused(_error(131026, "Message undeliverable",
                                      "sandbox: the number is not on WhatsApp"), 400)
        if to == OUTSIDE_WINDOW and request.body.get("type") == "text":
            raise GraphRefused(_error(131047, "Re-engagement message",
                                      "sandbox: more than 24 hours since the recipient last "
                                      "replied; send a template"), 400)
        if to == THROTTLED:
            tries = self._attempts.get(request.message_id, 0) + 1
            _remember(self._attempts, request.message_id, tries)
            if tries <= THROTTLED_FAILURES:
                raise GraphRefused(_error(130429, "Rate limit hit",
                                          f"sandbox: throughput reached (attempt {tries})"), 400)
        wamid = "wamid." + base64.b64encode(b"sbx" + uuid.uuid4().bytes).decode()
        _remember(self._accepted, request.message_id, wamid)
        plan = _plan(to)
        if self._app_secret and plan:
            task = asyncio.create_task(self._notify(request, wamid, plan),
                                       name=f"wa-sandbox-{request.message_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return SendResult(wamid=wamid, wa_id=to)

    async def _notify(self, request: GraphSend, wamid: str, plan: list[str]) -> None:
        for status in plan:
            await asyncio.sleep(self._delay)
            errors = None
            if status == "failed":
                errors = [{"code": 131026, "title": "Message undeliverable",
                           "message": "Message undeliverable",
                           "error_data": {"details": "sandbox: the handset could not be reached"}}]
            item = webhooks.status_item(wamid, status, int(time.time()), request.to,
                                        callback_data=request.message_id, errors=errors)
            await self._post(webhooks.envelope(request.phone_number_id, DISPLAY_NUMBER,
                                               statuses=[item]), request.message_id)

    async def _post(self, payload: dict[str, object], message_id: str) -> None:
        raw = webhooks.encode(payload)
        headers = {"Content-Type": "application/json",
                   webhooks.SIGNATURE_HEADER: webhooks.sign(self._app_secret, raw)}
        await call_back(lambda: self._client.post(self._webhook_url, content=raw, headers=headers),
                        what="notification", message_id=message_id)

    @property
    def pending(self) -> int:
        """Notification sequences not finished yet."""
        return len(self._tasks)

    async def aclose(self, grace: float = 1.0) -> None:
        """Let due notifications go out for up to ``grace`` seconds, cancel the rest."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        pending = set(self._tasks)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        await self._client.aclose()


def _plan(to: str) -> list[str]:
    if to == SENT_ONLY:
        return ["sent"]
    if to == FAILS_LATER:
        return ["sent", "failed"]
    if to == READ_FIRST:
        return ["sent", "read", "delivered"]
    return ["sent", "delivered", "read"]


def _remember(store: OrderedDict[str, V], key: str, value: V) -> None:
    store[key] = value
    store.move_to_end(key)
    while len(store) > _REMEMBERED:
        store.popitem(last=False)

