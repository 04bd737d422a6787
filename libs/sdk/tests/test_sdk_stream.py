"""The live stream client against a local WebSocket server (the ``websockets`` library's own server):
authentication, events, reconnection after a drop, refused handshakes, the blocking twin."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from postwire_client import (
    APIConnectionError,
    AsyncPostwire,
    AuthenticationError,
    Postwire,
    RetryPolicy,
)

KEY = "pw_test_stream"
FAST = RetryPolicy(initial_delay=0.01, max_delay=0.05)


def event(n: int, status: str = "DELIVERED", channel: str = "sms") -> str:
    return json.dumps({"type": "sms_delivered", "eventId": f"ev{n}", "messageId": f"msg{n}",
                       "channel": channel,
                       "status": status, "eventStatus": status, "recipient": "+14155552671",
                       "occurredAt": "2026-11-21T12:00:00.000Z", "metadata": {"n": str(n)}})


@dataclass
class WsServer:
    """Serves each connection with the next script: a function of the connection."""

    scripts: list[Callable[[ServerConnection], Awaitable[None]]]
    url: str = ""
    requests: list[Request] = field(default_factory=list)


def _refuse(status: int, error: str) -> Response:
    body = json.dumps({"success": False, "error": error, "message": error, "code": status}).encode()
    return Response(status, HTTPStatus(status).phrase,
                    Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))]),
                    body)


@pytest.fixture
async def ws_server() -> AsyncIterator[WsServer]:
    state = WsServer(scripts=[])

    def check(connection: ServerConnection, request: Request) -> Response | None:
        state.requests.append(request)
        if request.path.split("?")[0] != "/v1/stream":
            return _refuse(404, "not_found")
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            return _refuse(401, "unauthorized")
        return None

    async def handler(connection: ServerConnection) -> None:
        script = state.scripts.pop(0) if len(state.scripts) > 1 else state.scripts[0]
        await script(connection)

    async with serve(handler, "127.0.0.1", 0, process_request=check) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        state.url = f"http://127.0.0.1:{port}"
        yield state


def sends(*frames: str, close_code: int = 1000) -> Callable[[ServerConnection], Awaitable[None]]:
    async def script(connection: ServerConnection) -> None:
        for frame in frames:
            await connection.send(frame)
        await connection.close(close_code)

    return script


READY = json.dumps({"type": "ready", "channels": ["email", "sms"]})
PING = json.dumps({"type": "ping"})


async def test_events_arrive_in_order_and_a_normal_close_ends_the_stream(ws_server: WsServer) -> None:
    ws_server.scripts = [sends(READY, event(1), PING, event(9, channel="email"), event(2, "FAILED"),
                               event(3))]
    async with AsyncPostwire(KEY, base_url=ws_server.url, retry=FAST) as client:
        stream = client.stream(channel="sms", reconnect=False)
        got = [e async for e in stream]
    assert stream.channels == ["email", "sms"]  # from the ready frame; it and the ping are not events
    assert [(e.message_id, e.status, e.metadata) for e in got] == [
        ("msg1", "DELIVERED", {"n": "1"}), ("msg2", "FAILED", {"n": "2"}), ("msg3", "DELIVERED", {"n": "3"})]
    assert got[0].occurred_at is not None and got[0].occurred_at.year == 2026
    assert ws_server.requests[0].path == "/v1/stream"  # the channel is picked out by the client


async def test_a_dropped_connection_is_reconnected(ws_server: WsServer) -> None:
    ws_server.scripts = [sends(event(1), close_code=1011), sends(event(2), event(3))]
    async with AsyncPostwire(KEY, base_url=ws_server.url, retry=FAST) as client:
        stream = client.stream()
        got = []
        async for e in stream:
            got.append(e.message_id)
            if len(got) == 3:
                break
        await stream.close()
    assert got == ["msg1", "msg2", "msg3"]
    assert len(ws_server.requests) == 2
    assert all(r.headers["Authorization"] == f"Bearer {KEY}" for r in ws_server.requests)


async def test_a_bad_key_is_refused_at_once(ws_server: WsServer) -> None:
    ws_server.scripts = [sends(event(1))]
    async with AsyncPostwire("pw_test_wrong", base_url=ws_server.url, retry=FAST) as client:
        with pytest.raises(AuthenticationError) as caught:
            async for _ in client.stream():
                pass
    assert caught.value.error == "unauthorized" and len(ws_server.requests) == 1


async def test_a_policy_close_is_not_reconnected(ws_server: WsServer) -> None:
    ws_server.scripts = [sends(close_code=4403)]
    async with AsyncPostwire(KEY, base_url=ws_server.url, retry=FAST) as client:
        with pytest.raises(APIConnectionError, match="4403"):
            async for _ in client.stream():
                pass
    assert len(ws_server.requests) == 1


async def test_reconnects_in_a_row_without_events_are_bounded(ws_server: WsServer) -> None:
    ws_server.scripts = [sends(close_code=1011)]
    policy = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.02)
    async with AsyncPostwire(KEY, base_url=ws_server.url, retry=policy) as client:
        with pytest.raises(APIConnectionError):
            async for _ in client.stream():
                pass
    assert len(ws_server.requests) == 3


async def test_the_blocking_client_streams_too(ws_server: WsServer) -> None:
    ws_server.scripts = [sends(event(7), event(8))]

    def consume() -> list[Any]:
        with Postwire(KEY, base_url=ws_server.url, retry=FAST) as client, client.stream(
                reconnect=False) as stream:
            return [e.message_id for e in stream]

    assert await asyncio.to_thread(consume) == ["msg7", "msg8"]
