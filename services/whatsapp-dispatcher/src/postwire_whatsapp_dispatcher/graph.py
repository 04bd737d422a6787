"""The ``WhatsAppClient`` protocol and its Graph API adapter.

``POST {WHATSAPP_GRAPH_URL}/{WHATSAPP_GRAPH_VERSION}/{phone_number_id}/messages`` with the line's bearer
token. A Meta error answer becomes ``GraphRefused`` carrying Meta's error (the dispatcher decides from its
code what to do); no answer, a 5xx or a 429 without a Meta error becomes ``GraphUnavailable`` (retry).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import httpx
import msgspec

from postwire_platform.outbound import SpreadTransport, cookieless_jar
from postwire_whatsapp.cloud_api import GraphError, accepted_decoder, error_decoder, messages_path

log = logging.getLogger(__name__)


class GraphSend(msgspec.Struct, frozen=True, kw_only=True):
    """One message to send on one line."""

    message_id: str
    phone_number_id: str
    token: str
    to: str
    """The recipient's wa_id."""
    body: dict[str, Any]


class SendResult(msgspec.Struct, frozen=True, kw_only=True):
    """Meta accepted the message as ``wamid``; ``wa_id`` is the contact id Meta resolved ``to`` to."""

    wamid: str
    wa_id: str | None = None


class GraphRefused(Exception):
    """Meta answered with an error (``error.code`` says what it means)."""

    def __init__(self, error: GraphError, http_status: int) -> None:
        super().__init__(f"Graph error {error.code}: {error.reason}")
        self.error = error
        self.http_status = http_status


class GraphUnavailable(Exception):
    """No usable answer (network error, timeout, 5xx): try again later."""


class WhatsAppClient(Protocol):
    """The Graph API, the sandbox, or a test's stand-in."""

    async def send(self, request: GraphSend) -> SendResult:
        """Send one message; raise ``GraphRefused`` or ``GraphUnavailable`` when it was not accepted."""
        ...

    async def aclose(self) -> None:
        """Release connections and pending work."""
        ...


_encoder = msgspec.json.Encoder()


class GraphClient:
    """Speaks the Cloud API over one httpx client whose ``max_connections`` are spread over pools of
    ten (``SpreadTransport``); takes a transport for tests."""

    def __init__(self, base_url: str, version: str, *, timeout: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None, max_connections: int = 100) -> None:
        self._version = version
        if transport is None:  # one origin: small pools keep httpcore's per-request walk short
            transport = SpreadTransport.for_origin(base_url, max_connections=max_connections)
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout, transport=transport,
            cookies=cookieless_jar())  # one client calls Meta for every tenant

    async def send(self, request: GraphSend) -> SendResult:
        try:
            response = await self._client.post(
                messages_path(self._version, request.phone_number_id),
                content=_encoder.encode(request.body),
                headers={"Authorization": f"Bearer {request.token}",
                         "Content-Type": "application/json"})
        except httpx.HTTPError as exc:  # refused, reset, timed out: Meta gave no answer
            raise GraphUnavailable(f"Graph API unreachable: {exc!r}") from exc
        return interpret(response)

    async def aclose(self) -> None:
        await self._client.aclose()


def interpret(response: httpx.Response) -> SendResult:
    """The result of a send, or the error that refused it."""
    status = response.status_code
    if status == 200:
        try:
            answer = accepted_decoder.decode(response.content)
        except msgspec.DecodeError as exc:
            raise GraphRefused(GraphError(code=0, message=f"unreadable 200 answer: {exc}"),
                               status) from exc
        if not answer.messages:
            raise GraphRefused(GraphError(code=0, message="200 answer without a message id"), status)
        wa = answer.contacts[0].wa_id if answer.contacts else None
        return SendResult(wamid=answer.messages[0].id, wa_id=wa or None)
    try:
        error = error_decoder.decode(response.content).error
    except msgspec.DecodeError:
        error = None
    if error is not None:
        raise GraphRefused(error, status)
    if status in (408, 429) or status >= 500:
        raise GraphUnavailable(f"Graph API answered {status}")
    raise GraphRefused(GraphError(code=0, message=f"HTTP {status}: {response.text[:200]}"), status)
