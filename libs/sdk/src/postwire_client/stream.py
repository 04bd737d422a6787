"""The live stream (``/v1/stream``, a WebSocket): the tenant's status changes as they happen.

``async for event in client.stream(): …`` (or ``for event in client.stream()`` with the blocking client)
yields a :class:`~postwire_client.models.StreamEvent` per status change. The stream is live only: what
happened while no one listened is in the message lists and timelines, not replayed here.

When the connection drops, the iterator reconnects after a backoff (the client's retry policy bounds the
attempts in a row without an event in between); ``reconnect=False`` ends the iteration instead. A refused
handshake raises the matching ``APIError`` at once (401 bad key, 403 missing scope), except 429 and 503,
which are waited out like any request; a close for policy reasons (code 1008 or 4000-4999) is not
reconnected either.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode

import httpx
import msgspec
from websockets.asyncio.client import ClientConnection as AsyncConnection
from websockets.asyncio.client import connect as aconnect
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection as SyncConnection
from websockets.sync.client import connect as sconnect

from ._transport import Settings
from .errors import APIConnectionError, PostwireError, ResponseDecodeError, error_from_response
from .models import StreamEvent

PATH = "/v1/stream"
OPEN_TIMEOUT = 10.0
RETRYABLE_HANDSHAKES = frozenset({429, 502, 503, 504})
CONTROL_FRAMES = frozenset({"ready", "ping"})
"""Frames that are not events: ``ready`` (with the channels the key may read) and keepalives."""

_decoder = msgspec.json.Decoder(StreamEvent)


def stream_url(base_url: str, params: Mapping[str, str]) -> str:
    """``ws(s)://host/v1/stream?…`` from the client's ``http(s)://`` base URL."""
    if base_url.startswith("https://"):
        url = "wss://" + base_url[len("https://"):]
    elif base_url.startswith("http://"):
        url = "ws://" + base_url[len("http://"):]
    else:
        url = base_url
    return url + PATH + (("?" + urlencode(params)) if params else "")


def _decode(frame: str | bytes) -> StreamEvent:
    try:
        return _decoder.decode(frame)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ResponseDecodeError(f"unexpected stream frame: {exc}") from exc


class _Session:
    """What the sync and the async stream share: where to connect, and when to give up."""

    def __init__(self, settings: Settings, channel: str | None, reconnect: bool) -> None:
        self.settings = settings
        self.url = stream_url(settings.base_url, {})
        self.channel = channel
        self.reconnect = reconnect
        self.headers = {"Authorization": settings.headers["Authorization"]}
        self.user_agent = settings.headers.get("User-Agent")
        self.failures = 0
        self.closed = False
        self.channels: list[str] | None = None

    def refused(self, exc: InvalidStatus) -> float:
        """The wait before trying again after a refused handshake, or raise its ``APIError``."""
        answer = exc.response
        error = error_from_response(httpx.Response(
            answer.status_code, headers=list(answer.headers.raw_items()), content=bytes(answer.body or b"")))
        if answer.status_code not in RETRYABLE_HANDSHAKES:
            raise error from None
        return self.backoff(error)

    def backoff(self, cause: BaseException) -> float:
        """The wait before the next connection attempt; raises once the attempts in a row run out."""
        policy = self.settings.retry
        if self.failures >= policy.max_retries:
            if isinstance(cause, PostwireError):
                raise cause
            raise APIConnectionError(f"live stream: {type(cause).__name__}: {cause}") from cause
        delay = policy.backoff(self.failures)
        self.failures += 1
        return delay

    def wanted(self, frame: str | bytes) -> StreamEvent | None:
        """The frame's event, or None for a control frame (``ready``, keepalive ``ping``) and for an
        event of another channel than the one asked for (the server sends every channel the key may
        read)."""
        self.failures = 0
        event = _decode(frame)
        if event.type in CONTROL_FRAMES:
            if event.type == "ready" and event.channels is not None:
                self.channels = list(event.channels)
            return None
        if self.channel is not None and event.channel != self.channel:
            return None
        return event

    def after_close(self, exc: ConnectionClosed) -> float | None:
        """The wait before reconnecting after the socket closed; None to end the iteration normally."""
        code = exc.rcvd.code if exc.rcvd is not None else None
        if self.closed or (not self.reconnect and isinstance(exc, ConnectionClosedOK)):
            return None
        if code is not None and (code == 1008 or 4000 <= code <= 4999):
            reason = exc.rcvd.reason if exc.rcvd is not None else ""
            raise APIConnectionError(f"live stream closed by the server ({code}): {reason}") from exc
        if not self.reconnect:
            raise APIConnectionError(f"live stream closed: {exc}") from exc
        return self.backoff(exc)


class AsyncStream:
    """An async iterator of live events; ``async with`` it (or let it end) to close the socket."""

    def __init__(self, settings: Settings, *, channel: str | None = None, reconnect: bool = True) -> None:
        self._session = _Session(settings, channel, reconnect)
        self._ws: AsyncConnection | None = None

    @property
    def channels(self) -> list[str] | None:
        """The channels the key may read, as the server said once connected (None before)."""
        return self._session.channels

    async def connect(self) -> Self:
        """Open the socket now (iterating opens it otherwise); raises if the handshake is refused."""
        session = self._session
        while self._ws is None:
            try:
                self._ws = await aconnect(session.url, additional_headers=session.headers,
                                          user_agent_header=session.user_agent, open_timeout=OPEN_TIMEOUT)
            except InvalidStatus as exc:
                await asyncio.sleep(session.refused(exc))
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                await asyncio.sleep(session.backoff(exc))
        return self

    async def close(self) -> None:
        self._session.closed = True
        if self._ws is not None:
            ws, self._ws = self._ws, None
            await ws.close()

    async def __aenter__(self) -> Self:
        return await self.connect()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> StreamEvent:
        while not self._session.closed:  # until an event of the wanted channel, or the end
            await self.connect()
            assert self._ws is not None
            try:
                frame = await self._ws.recv()
            except ConnectionClosed as exc:
                self._ws = None
                delay = self._session.after_close(exc)
                if delay is None:
                    break
                await asyncio.sleep(delay)
                continue
            event = self._session.wanted(frame)
            if event is not None:
                return event
        await self.close()
        raise StopAsyncIteration


class Stream:
    """A blocking iterator of live events; use it in a ``with`` block (or let it end) to close it."""

    def __init__(self, settings: Settings, *, channel: str | None = None, reconnect: bool = True) -> None:
        self._session = _Session(settings, channel, reconnect)
        self._ws: SyncConnection | None = None

    @property
    def channels(self) -> list[str] | None:
        """The channels the key may read, as the server said once connected (None before)."""
        return self._session.channels

    def connect(self) -> Self:
        """Open the socket now (iterating opens it otherwise); raises if the handshake is refused."""
        session = self._session
        while self._ws is None:
            try:
                # entering the connection marks it as managed (websockets >= 17.1 warns otherwise);
                # close() below is the matching exit, on every version
                self._ws = sconnect(session.url, additional_headers=session.headers,
                                    user_agent_header=session.user_agent,
                                    open_timeout=OPEN_TIMEOUT).__enter__()
            except InvalidStatus as exc:
                time.sleep(session.refused(exc))
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                time.sleep(session.backoff(exc))
        return self

    def close(self) -> None:
        self._session.closed = True
        if self._ws is not None:
            ws, self._ws = self._ws, None
            ws.close()

    def __enter__(self) -> Self:
        return self.connect()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> StreamEvent:
        while not self._session.closed:  # until an event of the wanted channel, or the end
            self.connect()
            assert self._ws is not None
            try:
                frame = self._ws.recv()
            except ConnectionClosed as exc:
                self._ws = None
                delay = self._session.after_close(exc)
                if delay is None:
                    break
                time.sleep(delay)
                continue
            event = self._session.wanted(frame)
            if event is not None:
                return event
        self.close()
        raise StopIteration
