"""Outbound HTTP clients that call out on behalf of every tenant."""

from __future__ import annotations

from http.cookiejar import CookieJar, DefaultCookiePolicy


def cookieless_jar() -> CookieJar:
    """A cookie jar that stores nothing, for an httpx client shared by all tenants.

    httpx keeps the cookies its responses set and sends them back with later requests to the same
    host. A client that delivers webhooks, or calls Meta with each tenant's own token, would carry one
    tenant's cookies into another tenant's requests. A jar whose policy accepts no domain keeps none.
    """
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
