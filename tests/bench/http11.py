"""A minimal HTTP/1.1 keep-alive client for the load generator.

Why not httpx: at several hundred requests per second httpx's own CPU (about 1 ms per request here)
would take a large share of the two cores the system under test runs on, and the load client's CPU is
reported precisely because it competes with the system. This client only writes a prepared request and
reads a ``Content-Length`` answer over a pool of persistent connections (TCP_NODELAY), which is all the
benchmark needs; anything else (chunked answers, redirects) raises.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass


class ProtocolError(RuntimeError):
    """An answer this client does not read (no Content-Length, a closed connection)."""


@dataclass
class Response:
    status: int
    body: bytes


IDLE_REUSE_SECONDS = 4.0
"""An idle connection older than this is closed rather than reused, as httpcore does with connections
the server may be closing: under the server's keep-alive timeout, so a request is never written into a
connection the server is closing (that race showed up as ``IncompleteReadError`` in a full run)."""


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = time.monotonic()

    @property
    def reusable(self) -> bool:
        """Not closed by the server and not idle for long."""
        return (not self.reader.at_eof() and not self.writer.is_closing()
                and time.monotonic() - self.idle_since < IDLE_REUSE_SECONDS)

    async def roundtrip(self, request: bytes) -> Response:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, _, rest = head.partition(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length = None
        for line in rest.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if length is None:
            raise ProtocolError(f"answer without Content-Length: {head[:200]!r}")
        body = await self.reader.readexactly(length) if length else b""
        return Response(status, body)

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Up to ``size`` persistent connections to one ``host:port``."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host = host
        self.port = port
        self.size = size
        self._idle: list[Connection] = []
        self._open = 0
        self._free = asyncio.Semaphore(size)

    async def _connect(self) -> Connection:
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._open += 1
        return Connection(reader, writer)

    async def request(self, request: bytes) -> Response:
        """Send ``request`` (complete bytes) on a free, reusable connection (or a new one)."""
        async with self._free:
            conn = None
            while self._idle and conn is None:
                candidate = self._idle.pop()
                if candidate.reusable:
                    conn = candidate
                else:
                    candidate.close()
                    self._open -= 1
            if conn is None:
                conn = await self._connect()
            try:
                response = await conn.roundtrip(request)
            except (OSError, asyncio.IncompleteReadError, ProtocolError):
                conn.close()
                self._open -= 1
                raise
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
            return response

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()


def post_json(host: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """The bytes of a ``POST`` with a JSON body."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json",
             f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode("latin-1") + body
