"""A dnspython resolver from the ``DNS_NAMESERVERS`` setting (``host[:port]``, comma-separated).

Empty means the system's resolver configuration; tests point it at a local server on loopback.
"""

from __future__ import annotations

import dns.asyncresolver

from .settings import SettingsError


def make_resolver(nameservers: str, *, timeout: float = 5.0) -> dns.asyncresolver.Resolver:
    """An async resolver asking ``nameservers`` (all on one port), or the system's when empty."""
    spec = [part.strip() for part in nameservers.split(",") if part.strip()]
    if not spec:
        resolver = dns.asyncresolver.Resolver(configure=True)
    else:
        resolver = dns.asyncresolver.Resolver(configure=False)
        hosts: list[str] = []
        ports: set[int] = set()
        for item in spec:
            host, port = item, 53
            if item.count(":") == 1:
                host, raw_port = item.split(":")
                try:
                    port = int(raw_port)
                except ValueError:
                    raise SettingsError(f"DNS_NAMESERVERS: bad port in {item!r}") from None
            hosts.append(host)
            ports.add(port)
        if len(ports) != 1:
            raise SettingsError("DNS_NAMESERVERS: every nameserver must use the same port")
        resolver.nameservers = hosts
        resolver.port = ports.pop()
    resolver.timeout = timeout
    resolver.lifetime = timeout
    resolver.cache = None
    return resolver
