"""The HTTP client of deliveries, with the SSRF guard where the socket is opened.

The gateway checks an endpoint's host when it is created or changed, but DNS can change afterwards
(rebinding). So every new connection resolves the host here, refuses it unless every address is public
(``postwire_platform.webhook_targets``), and connects to the address it checked: there is no second
lookup between check and connect. TLS still verifies the certificate against the host name, and
connections are pooled per host name, never shared between names that happen to share an address.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable

import httpcore
import httpx

from postwire_platform.outbound import OriginShardedTransport, cookieless_jar
from postwire_platform.webhook_targets import Resolver, resolve_checked, system_resolver

USER_AGENT = "Postwire-Webhooks/1.0"


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to checked public addresses (``UnsafeTarget`` otherwise), or to
    any address the resolver gives when private targets are allowed."""

    def __init__(self, resolver: Resolver = system_resolver, *, allow_private: bool = False,
                 inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._resolver = resolver
        self._allow_private = allow_private
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve_checked(host, port, allow_private=self._allow_private,
                                          resolver=self._resolver)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout=timeout,
                                                     local_address=local_address,
                                                     socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
                                  ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not webhook targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, its connection pool built on ``GuardedBackend``."""

    def __init__(self, *, limits: httpx.Limits, allow_private: bool = False,
                 resolver: Resolver = system_resolver,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        context = ssl_context or httpx.create_ssl_context()  # shared: each loads the CA bundle
        super().__init__(limits=limits, verify=context)
        # httpx offers no public hook for the network backend; the pool is rebuilt the way httpx
        # builds it (AsyncHTTPTransport.__init__), with our backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(resolver, allow_private=allow_private),
        )


POOLS = 16
"""Connection pools of the delivery client; an endpoint's origin always maps to the same one."""


def make_client(*, timeout: float, allow_private: bool, max_connections: int,
                resolver: Resolver = system_resolver) -> httpx.AsyncClient:
    """The delivery client: no redirects (a 3xx is an answer, not a hop to an unchecked host), no
    proxies from the environment, the SSRF guard on every connection (unless private targets are
    allowed, the addresses are still ours to resolve and pin), and no cookies (``cookieless_jar``:
    this one client delivers for every tenant).

    The connections are split by origin over ``POOLS`` pools (``OriginShardedTransport``): httpcore
    walks a whole pool on every request, which with one pool for every tenant's endpoints cost more
    than the request itself. Each pool may open ``max_connections`` (one busy origin is not held to a
    sixteenth) and keeps a sixteenth of the idle connections one pool kept, at least ten; what is in
    flight at once is bounded by the consumers' prefetch. The pools share one TLS context."""
    limits = httpx.Limits(max_connections=max_connections,
                          max_keepalive_connections=max(10, max_connections // 2 // POOLS))
    context = httpx.create_ssl_context()
    transport = OriginShardedTransport([
        GuardedTransport(limits=limits, allow_private=allow_private, resolver=resolver,
                         ssl_context=context)
        for _ in range(POOLS)])
    return httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False,
                             trust_env=False, headers={"user-agent": USER_AGENT},
                             cookies=cookieless_jar())
