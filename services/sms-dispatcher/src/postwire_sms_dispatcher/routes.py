"""Carrier routes configured by the operator (``SMS_ROUTES``): which carrier a live SMS goes to.

``{"routes": {name: route}, "rules": [{"tenant"|"prefix": …, "routes": [name, …]}], "default": [name, …]}``
A route is ``{"type": "smpp", …}``, ``{"type": "http", …}`` or ``{"type": "sandbox"}``. Rules are looked
at in order: a tenant rule matches the tenant, a prefix rule the recipient (E.164, longest prefix wins
among prefix rules); the first rule that matches gives the list of routes, else ``default``. The list is
a failover order: when a route cannot take the message now (every SMPP bind down), the next one is tried.
Test keys always use the sandbox.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from postwire_sms.receipts import IdConversion

Positive = Annotated[float, msgspec.Meta(gt=0)]


class SmppRoute(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="smpp"):
    """An SMPP 3.4 carrier: ``binds`` transceiver sessions, each with its window and throughput."""

    host: str
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)]
    system_id: Annotated[str, msgspec.Meta(max_length=15)]
    password: Annotated[str, msgspec.Meta(max_length=8)] = ""
    system_type: Annotated[str, msgspec.Meta(max_length=12)] = ""
    binds: Annotated[int, msgspec.Meta(ge=1, le=32)] = 1
    window: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 10
    """Submits in flight per bind (awaiting their ``submit_sm_resp``)."""
    throughput: Positive | None = None
    """Submits per second per bind (the carrier's contracted rate); None: unlimited."""
    reconnect_min: Positive = 0.5
    reconnect_max: Positive = 30.0
    submit_timeout: Positive = 30.0
    reference_tlv: Annotated[int, msgspec.Meta(ge=0x1400, le=0x3FFF)] | None = None
    """Vendor TLV that carries our message id on each submit (for carriers and simulators that echo
    or count it); None: not sent."""
    receipt_ids: IdConversion = "same"
    """How the carrier writes the id in receipts compared with ``submit_sm_resp``."""
    connect_timeout: Positive = 10.0


class HttpRoute(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="http"):
    """The HTTP carrier protocol of ``docs/architecture.md``."""

    url: str
    token: str = ""
    timeout: Positive = 10.0


class SandboxRoute(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="sandbox"):
    """The built-in sandbox (what test keys use), usable as a live route in a staging setup."""


Route = SmppRoute | HttpRoute | SandboxRoute


class Rule(msgspec.Struct, frozen=True, kw_only=True):
    """Routes for one tenant or one recipient prefix (``+44``), in failover order."""

    routes: Annotated[list[str], msgspec.Meta(min_length=1)]
    tenant: str | None = None
    prefix: Annotated[str, msgspec.Meta(pattern=r"^\+[0-9]{1,15}$")] | None = None

    def __post_init__(self) -> None:
        if (self.tenant is None) == (self.prefix is None):
            raise ValueError("a rule names exactly one of tenant or prefix")


class RoutingTable(msgspec.Struct, frozen=True, kw_only=True):
    """``SMS_ROUTES``."""

    routes: dict[str, Route] = {}
    rules: list[Rule] = []
    default: list[str] = []

    def __post_init__(self) -> None:
        for names in [self.default, *(r.routes for r in self.rules)]:
            for name in names:
                if name not in self.routes:
                    raise ValueError(f"unknown route {name!r} (known: {sorted(self.routes)})")

    def candidates(self, tenant_id: str, to: str) -> list[str]:
        """Route names for a live message to ``to`` from ``tenant_id``, in failover order."""
        for rule in self.rules:
            if rule.tenant is not None and rule.tenant == tenant_id:
                return list(rule.routes)
        matching = [r for r in self.rules if r.prefix is not None and to.startswith(r.prefix)]
        if matching:
            return list(max(matching, key=lambda r: len(r.prefix or "")).routes)
        return list(self.default)


def legacy_table(url: str, token: str, timeout: float) -> RoutingTable:
    """The table ``SMS_CARRIER_URL`` stands for when ``SMS_ROUTES`` is not set: one HTTP route."""
    if not url:
        return RoutingTable()
    return RoutingTable(routes={"http": HttpRoute(url=url, token=token, timeout=timeout)},
                        default=["http"])


Kind = Literal["smpp", "http", "sandbox"]
