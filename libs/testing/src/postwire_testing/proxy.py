"""``ForwardProxy``: stands in for an operator's HTTP egress proxy and answers for the upstream.

A client configured with ``HTTP_PROXY=<proxy.url>`` sends it the request in absolute form
(``POST http://host/path HTTP/1.1``); the proxy records that request line and answers it itself with
the status and JSON body it was given, so a test can tell that the client went through the proxy to
a host that does not exist.
"""

from __future__ import annotations

import asyncio
from typing import Self

import pytest

_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                    "all_proxy", "NO_PROXY", "no_proxy")


class ForwardProxy:
    """On 127.0.0.1 and a free port; ``request_lines`` holds what was asked, in order."""

    def __init__(self, body: bytes, *, status: int = 200) -> None:
        self.request_lines: list[bytes] = []
        self._answer = (f"HTTP/1.1 {status} OK\r\ncontent-type: application/json\r\n"
                        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make this the environment's only proxy: ``HTTP_PROXY`` (for http URLs), nothing else."""
        for name in _PROXY_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", self.url)

    @property
    def url(self) -> str:
        assert self._server is not None, "ForwardProxy is not started"
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                       if line.startswith(b"content-length:")), 0)
        await reader.readexactly(length)
        self.request_lines.append(head.split(b"\r\n")[0])
        writer.write(self._answer)
        await writer.drain()
        writer.close()
