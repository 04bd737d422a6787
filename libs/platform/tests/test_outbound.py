"""``SpreadTransport`` against a real local HTTP server: light traffic keeps one connection, a crowd
is spread over the pools and never opens more than ``max_connections``, every way a request ends gives
its slot back; ``OriginShardedTransport`` keeps each origin's connections in one pool and reuses them;
``environment_proxy`` follows the proxy variables."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from postwire_platform.outbound import OriginShardedTransport, SpreadTransport, environment_proxy


class HeldServer:
    """HTTP/1.1 on 127.0.0.1 answering ``{}``; counts connections and, while ``hold`` is clear, keeps
    every answer back."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests = 0
        self.hold = asyncio.Event()
        self.hold.set()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> HeldServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                               if line.startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                self.requests += 1
                await self.hold.wait()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"content-length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[HeldServer]:
    async with HeldServer() as running:
        yield running


async def test_light_traffic_reuses_one_connection_of_the_first_pool(server: HeldServer) -> None:
    transport = SpreadTransport.of_http(max_connections=100)
    async with httpx.AsyncClient(transport=transport) as client:
        for _ in range(20):
            response = await client.post(server.url + "/send", content=b"{}")
            assert response.json() == {}
        assert transport.in_flight() == [0] * 10
    assert server.connections == 1 and server.requests == 20


async def test_a_crowd_is_spread_over_the_pools_and_capped_at_max_connections(
        server: HeldServer) -> None:
    transport = SpreadTransport.of_http(max_connections=30)  # three pools of ten
    server.hold.clear()
    async with httpx.AsyncClient(transport=transport) as client:
        sends = [asyncio.create_task(client.post(server.url, content=b"{}")) for _ in range(35)]
        async with asyncio.timeout(10):
            while server.requests < 30:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # the five beyond the cap wait inside the pools
        assert server.connections == 30 and server.requests == 30
        assert transport.in_flight() == [12, 12, 11]
        server.hold.set()
        answers = await asyncio.gather(*sends)
        assert [a.status_code for a in answers] == [200] * 35
        assert transport.in_flight() == [0, 0, 0]
    assert server.connections == 30


async def test_a_request_that_fails_or_is_left_unread_gives_its_slot_back(server: HeldServer) -> None:
    transport = SpreadTransport.of_http(max_connections=20)
    async with httpx.AsyncClient(transport=transport, timeout=5) as client:
        with pytest.raises(httpx.ConnectError):  # nothing listens on port 9 here
            await client.post("http://127.0.0.1:9/", content=b"{}")
        assert transport.in_flight() == [0, 0]

        async with client.stream("POST", server.url, content=b"{}") as response:
            assert transport.in_flight() == [1, 0]  # held until the body is closed
            assert response.status_code == 200
        assert transport.in_flight() == [0, 0]

        server.hold.clear()
        slow = asyncio.create_task(client.post(server.url, content=b"{}"))
        async with asyncio.timeout(5):
            while server.requests < 2:
                await asyncio.sleep(0.01)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        assert transport.in_flight() == [0, 0]


def test_the_pools_share_one_tls_context() -> None:
    """A TLS context of its own per pool would load the CA bundle again (about 0.7 MiB of RSS each:
    ten pools cost whatsapp-dispatcher 7 MiB before they shared one)."""
    transport = SpreadTransport.of_http(max_connections=100)
    pools = [t._pool for t in transport._transports]  # type: ignore[attr-defined]
    assert len(pools) == 10 and len({id(pool._ssl_context) for pool in pools}) == 1


async def test_each_origin_keeps_its_connections_in_one_pool_and_reuses_them() -> None:
    async with HeldServer() as first, HeldServer() as second:
        pools = [httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=10)) for _ in range(4)]
        transport = OriginShardedTransport(pools)
        async with httpx.AsyncClient(transport=transport) as client:
            for _ in range(10):  # the two origins interleaved
                for server in (first, second):
                    assert (await client.post(server.url + "/hook", content=b"{}")).json() == {}
        assert (first.connections, first.requests) == (1, 10)
        assert (second.connections, second.requests) == (1, 10)

    url = httpx.URL("https://hooks.example.com/a")
    assert transport.pool_of(url) == transport.pool_of(httpx.URL("https://hooks.example.com:443/b"))
    assert transport.pool_of(url) == transport.pool_of(httpx.URL("https://HOOKS.example.com/c?x=1"))
    spread = OriginShardedTransport([httpx.AsyncHTTPTransport() for _ in range(16)])
    used = {spread.pool_of(httpx.URL(f"https://tenant{i}.example.com/hook")) for i in range(80)}
    assert len(used) >= 12  # eighty origins reach most of the sixteen pools


def test_environment_proxy_follows_the_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                 "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert environment_proxy("https://graph.facebook.com") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://egress.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,.corp.example")
    assert environment_proxy("https://graph.facebook.com") == "http://egress.internal:3128"
    assert environment_proxy("https://meta.corp.example/v21.0") is None
    assert environment_proxy("http://graph.facebook.com") is None  # HTTPS_PROXY is for https only
    monkeypatch.setenv("ALL_PROXY", "http://any.internal:3128")
    assert environment_proxy("http://graph.facebook.com") == "http://any.internal:3128"
