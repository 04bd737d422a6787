"""Outbound HTTP clients that call out on behalf of every tenant."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Sequence
from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import httpx


def cookieless_jar() -> CookieJar:
    """A cookie jar that stores nothing, for an httpx client shared by all tenants.

    httpx keeps the cookies its responses set and sends them back with later requests to the same
    host. A client that delivers webhooks, or calls Meta with each tenant's own token, would carry one
    tenant's cookies into another tenant's requests. A jar whose policy accepts no domain keeps none.
    """
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``,
    ``NO_PROXY``), as httpx's default transport would use it; None for a direct connection.

    httpx reads these variables only for a client without a transport of its own, so a client given
    one (``SpreadTransport``) asks here to keep going through the operator's egress proxy."""
    parts = urlsplit(url)
    if proxy_bypass(parts.hostname or ""):
        return None
    proxies = getproxies()
    return proxies.get(parts.scheme) or proxies.get("all") or None


class SpreadTransport(httpx.AsyncBaseTransport):
    """Requests to one origin spread over several small connection pools instead of one large one.

    httpcore's pool walks every pooled connection, polling each idle socket, whenever a request is
    queued and again when it ends (encode/httpcore#1035): with 100 keep-alive connections to one
    origin and 50 requests in flight, a request cost three times the CPU it costs over pools of ten
    (``python -m tests.bench.httppool``). Each request
    goes to the pool with the fewest requests in flight (the first on a tie), so light traffic keeps to
    the first pool and its connections, the other pools' idle connections expire, and no walk covers
    more than ``per_pool`` connections. For one origin: requests to many origins would churn the first
    pool's connections.
    """

    def __init__(self, transports: Sequence[httpx.AsyncBaseTransport]) -> None:
        if not transports:
            raise ValueError("SpreadTransport needs at least one transport")
        self._transports = list(transports)
        self._in_flight = [0] * len(self._transports)

    @classmethod
    def of_http(cls, *, max_connections: int, per_pool: int = 10, keepalive_expiry: float = 5.0,
                proxy: str | None = None) -> SpreadTransport:
        """httpx's own transports, ``per_pool`` connections each, ``max_connections`` in all (at least
        one pool), through ``proxy`` when given (``environment_proxy``). They share one TLS context
        (each of its own would load the CA bundle again: about 0.7 MiB apiece)."""
        pools = max(1, -(-max_connections // per_pool))
        size = max(1, min(per_pool, max_connections))
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size,
                              keepalive_expiry=keepalive_expiry)
        context = httpx.create_ssl_context()
        return cls([httpx.AsyncHTTPTransport(verify=context, limits=limits, proxy=proxy)
                    for _ in range(pools)])

    @classmethod
    def for_origin(cls, base_url: str, *, max_connections: int) -> SpreadTransport:
        """``of_http`` for a client of ``base_url``'s origin, through the proxy the environment
        names for it, as httpx's own client would go (``environment_proxy``)."""
        return cls.of_http(max_connections=max_connections, proxy=environment_proxy(base_url))

    def in_flight(self) -> list[int]:
        """Requests in flight (response not yet closed) per pool."""
        return list(self._in_flight)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        counts = self._in_flight
        index = counts.index(min(counts))
        counts[index] += 1
        try:
            response = await self._transports[index].handle_async_request(request)
        except BaseException:
            counts[index] -= 1
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(response.status_code, headers=response.headers,
                              stream=_ReleasedOnClose(response.stream, counts, index),
                              extensions=response.extensions)

    async def aclose(self) -> None:
        for transport in self._transports:
            await transport.aclose()


class _ReleasedOnClose(httpx.AsyncByteStream):
    """A response body that gives its pool's in-flight slot back once, when it is closed."""

    def __init__(self, stream: httpx.AsyncByteStream, counts: list[int], index: int) -> None:
        self._stream = stream
        self._counts = counts
        self._index: int | None = index

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._stream:
            yield part

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._index is not None:
                self._counts[self._index] -= 1
                self._index = None


class OriginShardedTransport(httpx.AsyncBaseTransport):
    """Requests spread over several connection pools by origin, for a client of many origins.

    Every connection to one origin lives in the same pool, so keep-alive reuse is as with one pool,
    while httpcore's per-request walk (``SpreadTransport``) covers only the connections of the origins
    that hash to that pool: with 80 origins in one pool of 100 keep-alive connections a request cost
    about 5 ms of CPU, against about 1 ms over sixteen pools. A pool's limits apply to the origins that share
    it; each pool may hold as many connections as one pool did, so one busy origin can still use them.
    """

    def __init__(self, transports: Sequence[httpx.AsyncBaseTransport]) -> None:
        if not transports:
            raise ValueError("OriginShardedTransport needs at least one transport")
        self._transports = list(transports)

    def pool_of(self, url: httpx.URL) -> int:
        """The index of the pool that holds ``url``'s origin's connections."""
        origin = f"{url.scheme}://{url.host}:{url.port or _DEFAULT_PORTS.get(url.scheme, 0)}"
        return zlib.crc32(origin.encode()) % len(self._transports)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._transports[self.pool_of(request.url)].handle_async_request(request)

    async def aclose(self) -> None:
        for transport in self._transports:
            await transport.aclose()


_DEFAULT_PORTS = {"http": 80, "https": 443}
