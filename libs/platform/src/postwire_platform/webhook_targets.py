"""Where customer webhooks may go: the SSRF guard shared by the gateway (at create/update) and
webhook-fanout (again at delivery, on the address actually connected to).

A target is refused when its host is, or resolves to, any address that is not globally routable:
loopback, private (RFC 1918, ULA), link-local (the cloud metadata service), CGNAT, multicast, reserved,
unspecified, and IPv4 addresses hidden inside IPv6 (mapped, 6to4, Teredo are unwrapped first). Every
resolved address must pass, so a name that resolves to one public and one private address is refused.
The operator can allow such targets (``WEBHOOK_ALLOW_PRIVATE``), as ``make run`` does for local
receivers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> addresses`` (as text); raises ``UnresolvableHost``."""


class UnsafeTarget(ValueError):
    """A webhook URL that may not be used; ``code`` is a machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class UnresolvableHost(UnsafeTarget):
    """The host name does not resolve (or resolving failed)."""

    def __init__(self, host: str, detail: str, *, temporary: bool = False) -> None:
        super().__init__("host_unresolvable", f"{host} does not resolve ({detail})")
        self.temporary = temporary


def _unwrap(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is not None:
            return inner
    return ip


def is_forbidden(address: str | IPAddress) -> bool:
    """True for any address a webhook must not reach unless private targets are allowed."""
    ip = _unwrap(ipaddress.ip_address(address) if isinstance(address, str) else address)
    return not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to through the operating system (``getaddrinfo``)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        temporary = exc.errno in (socket.EAI_AGAIN, getattr(socket, "EAI_SYSTEM", None))
        raise UnresolvableHost(host, exc.strerror or str(exc), temporary=temporary) from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise UnresolvableHost(host, "no address")
    return addresses


def literal_address(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is one (IPv6 without brackets), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve_checked(host: str, port: int, *, allow_private: bool,
                          resolver: Resolver = system_resolver) -> list[str]:
    """The addresses to connect to for ``host``, all of them allowed; ``UnsafeTarget`` otherwise."""
    literal = literal_address(host)
    addresses = [str(literal)] if literal is not None else await resolver(host, port)
    if not allow_private:
        bad = [a for a in addresses if is_forbidden(a)]
        if bad:
            raise UnsafeTarget("private_target",
                               f"{host} is a private, loopback or otherwise non-public address "
                               f"({', '.join(bad)}); webhooks go to public hosts only")
    return addresses


def split_url(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an absolute http(s) URL; ``UnsafeTarget`` if it is not one."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        raise UnsafeTarget("invalid_url", "url must be an absolute http(s) URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise UnsafeTarget("invalid_url", "url must be an absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTarget("invalid_url", "url must not carry credentials")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


async def check_url(url: str, *, require_https: bool, allow_private: bool,
                    resolver: Resolver = system_resolver) -> None:
    """Refuse (``UnsafeTarget``) a URL that is malformed, plain http when https is required, or that
    points at a non-public address."""
    scheme, host, port = split_url(url)
    if require_https and scheme != "https":
        raise UnsafeTarget("https_required", "live API keys require an https:// webhook URL")
    if allow_private:  # any address will do: nothing to resolve for
        return
    await resolve_checked(host, port, allow_private=False, resolver=resolver)
