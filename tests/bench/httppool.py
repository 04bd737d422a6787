"""``python -m tests.bench.httppool``: what httpcore's pool walk costs an httpx client, and what
``SpreadTransport`` and ``OriginShardedTransport`` save (docs/performance.md, changes 34 and 35).

A bare HTTP/1.1 server in another process answers on 127.0.0.1 (one port per origin); this process
warms each client's pool, then makes 4,000 POSTs and prints the client's CPU per request. Bounded in
count and time, loopback only, stops the server it started.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Callable

import httpx

from postwire_platform.outbound import OriginShardedTransport, SpreadTransport

_ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
_REQUESTS = 4000


class _Answering(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\r\n\r\n")) >= 0:
            length = next((int(line.split(b":")[1]) for line in
                           self._buffer[:end].lower().split(b"\r\n")
                           if line.startswith(b"content-length:")), 0)
            if len(self._buffer) < end + 4 + length:
                return
            self._buffer = self._buffer[end + 4 + length:]
            self._transport.write(_ANSWER)


def _serve(ports: list[int], seconds: float) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        for port in ports:
            await loop.create_server(_Answering, "127.0.0.1", port)
        await asyncio.sleep(seconds)
    asyncio.run(main())


def _one_pool(max_connections: int, keepalive: int) -> httpx.AsyncBaseTransport:
    return httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=max_connections,
                                                        max_keepalive_connections=keepalive))


async def _measure(name: str, transport: httpx.AsyncBaseTransport, urls: list[str],
                   warm: int, in_flight: int) -> None:
    async with httpx.AsyncClient(transport=transport) as client:
        await asyncio.gather(*(client.post(urls[i % len(urls)], content=b"{}")
                               for i in range(warm)))
        turn = iter(range(_REQUESTS))

        async def worker() -> None:
            for i in turn:
                await client.post(urls[i % len(urls)], content=b'{"a":1}')

        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(f"  {name:<58} {cpu * 1000 / _REQUESTS:6.2f} ms CPU/request  "
          f"{_REQUESTS / wall:6.0f} req/s", flush=True)


def main() -> None:
    ports = list(range(19300, 19380))
    server = multiprocessing.Process(target=_serve, args=(ports, 240.0), daemon=True)
    server.start()
    time.sleep(0.5)
    one = [f"http://127.0.0.1:{ports[0]}/send"]
    many = [f"http://127.0.0.1:{port}/hook" for port in ports]
    cases: list[tuple[str, Callable[[], httpx.AsyncBaseTransport], list[str], int, int]] = [
        ("one origin, one pool of 10, 4 in flight", lambda: _one_pool(10, 10), one, 10, 4),
        ("one origin, one pool of 100, 4 in flight", lambda: _one_pool(100, 100), one, 100, 4),
        ("one origin, SpreadTransport 10 x 10, 4 in flight",
         lambda: SpreadTransport.of_http(max_connections=100), one, 100, 4),
        ("one origin, one pool of 100, 50 in flight", lambda: _one_pool(100, 100), one, 100, 50),
        ("one origin, SpreadTransport 10 x 10, 50 in flight",
         lambda: SpreadTransport.of_http(max_connections=100), one, 100, 50),
        ("80 origins, one pool (200, 100 kept), 10 in flight", lambda: _one_pool(200, 100),
         many, 80, 10),
        ("80 origins, OriginShardedTransport 16 pools, 10 in flight",
         lambda: OriginShardedTransport([_one_pool(200, 10) for _ in range(16)]), many, 80, 10),
    ]
    try:
        print(f"httpx client CPU per request, {_REQUESTS} POSTs each, server in another process")
        for name, make, urls, warm, in_flight in cases:
            asyncio.run(_measure(name, make(), urls, warm, in_flight))
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()
