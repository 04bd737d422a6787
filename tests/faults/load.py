"""Load the way a careful customer sends it: live keys, an ``Idempotency-Key`` per message, retries on
503, 409-in-progress, 429 and dropped connections with the same key, until the message is accepted.

Every answer is recorded, so a scenario can check what the gateway said while a dependency was down
(503 ``service_unavailable`` with ``Retry-After``, never a 500) and which messages it accepted (201).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from postwire_testing.system import DevSystem
from tests.e2e.helpers import cli

from .fakes import Customer
from .world import World

FULL_FIGURES = {"sms": 2000, "email": 500, "whatsapp": 500}
"""The issue's figures per scenario, run with ``FAULT_SCALE=1``."""

DEFAULT_SCALE = 0.1
SEND_DEADLINE = 300.0
"""Seconds one message may take to be accepted, retries through an outage included."""


def scale() -> float:
    """``FAULT_SCALE`` (a fraction of the full figures; CI runs the default)."""
    raw = os.environ.get("FAULT_SCALE", "")
    try:
        value = float(raw) if raw else DEFAULT_SCALE
    except ValueError:
        raise ValueError(f"FAULT_SCALE must be a number, not {raw!r}") from None
    if not 0 < value <= 10:
        raise ValueError("FAULT_SCALE must be in (0, 10]")
    return value


def figure(channel: str, minimum: int = 20) -> int:
    """How many messages of ``channel`` a scenario sends at the current scale."""
    return max(minimum, round(FULL_FIGURES[channel] * scale()))


@dataclass
class Tenant:
    """A fresh tenant with a live key, an approved sender id, a verified sending domain and a webhook
    endpoint to its customer."""

    tenant_id: str
    key: str
    sender_id: str
    customer: Customer
    endpoint_id: str
    secret: str
    domain: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def new_tenant(world: World, customer: Customer, name: str) -> Tenant:
    """Create the tenant, key and sender id with the operator CLI; the webhook endpoint and the
    sending domain (verified through the suite's DNS server) through the API."""
    system = world.system
    url = system.mongodb_url
    tenant_id = (await asyncio.to_thread(cli, url, "tenants", "create", name))["id"]
    sender = "Faults"
    await asyncio.to_thread(cli, url, "sender-ids", "approve", "--tenant", tenant_id, sender)
    key = (await asyncio.to_thread(
        cli, url, "keys", "create", "--tenant", tenant_id, "--scopes", "all", "--live",
        "--rate-limit", "6000000/100000"))["key"]
    # through the API a live key may only register an https endpoint (and a test key's endpoint gets
    # test events only): the operator registers the customer's local http one with the CLI
    endpoint = await asyncio.to_thread(cli, url, "webhooks", "create", "--tenant", tenant_id,
                                       "--state-dir", str(system.state_dir), customer.url)
    auth = {"Authorization": f"Bearer {key}"}
    domain = f"{tenant_id.lower().replace('_', '-')}.faults.example"
    async with httpx.AsyncClient(base_url=system.info["gateway"], timeout=60) as client:
        r = await client.post("/v1/domains", headers=auth, json={"domain": domain})
        assert r.status_code == 201, r.text
        created = r.json()["data"]
        for record in created["dnsRecords"]:
            if record["type"] == "TXT":
                world.dns.add_txt(record["name"], record["value"])
            else:
                world.dns.add(record["name"], record["type"], record["value"].rstrip(".") + ".")
        r = await client.post(f"/v1/domains/{created['id']}/verify", headers=auth)
        assert r.status_code == 200 and r.json()["data"]["status"] == "verified", r.text
    await asyncio.sleep(1.5)  # webhook-fanout re-reads a tenant's endpoints every second
    return Tenant(tenant_id=tenant_id, key=key, sender_id=sender, customer=customer,
                  endpoint_id=endpoint["id"], secret=endpoint["secret"], domain=domain)


@dataclass(frozen=True)
class Answer:
    """One answer the gateway gave (or the transport error instead of one)."""

    at: float
    status: int | None
    error: str | None
    retry_after: str | None
    body: Any


@dataclass
class Sent:
    """What a load run produced: accepted message ids per channel and every answer on the way."""

    accepted: dict[str, list[str]] = field(default_factory=lambda: {c: [] for c in CHANNELS})
    answers: list[Answer] = field(default_factory=list)
    gave_up: list[str] = field(default_factory=list)

    def unexpected(self) -> list[Answer]:
        """Answers a careful client cannot act on: anything but 201, 503, 409-in-progress, 429."""
        fine = {201, 503, 429}
        return [a for a in self.answers if a.status is not None and a.status not in fine
                and not (a.status == 409 and a.error == "idempotency_request_in_progress")]

    def unavailable(self) -> list[Answer]:
        return [a for a in self.answers if a.status == 503]


CHANNELS = ("sms", "email", "whatsapp")
RECIPIENT_DOMAIN = "inbox.faults.example"
"""Where live test email goes: its MX is the suite's SMTP sink (see ``world``)."""


def request_for(channel: str, tenant: Tenant, i: int, prefix: str) -> tuple[str, dict[str, Any]]:
    """The send request of message ``i`` of a load on ``channel``."""
    if channel == "sms":
        return "/v1/sms/send", {"to": f"+447911{i:06d}", "body": f"fault load {prefix}-{i}",
                                "senderId": tenant.sender_id}
    if channel == "email":
        return "/v1/emails/send", {"from": f"orders@{tenant.domain}",
                                   "to": [f"user{i}@{RECIPIENT_DOMAIN}"],
                                   "subject": f"fault load {prefix}-{i}",
                                   "text": f"fault load {prefix}-{i}"}
    # distinct recipients: Meta (and the dispatcher's pacing) allow about one message per 6 s each
    return "/v1/whatsapp/send", {"to": f"+447922{i:06d}", "text": f"fault load {prefix}-{i}"}


def mix(minimum: int = 10) -> dict[str, int]:
    """How many messages of each channel a scenario sends at the current scale."""
    return {c: figure(c, minimum) for c in CHANNELS}


class Load:
    """Sends through the gateway with bounded concurrency and an optional pace (requests per second)."""

    def __init__(self, system: DevSystem, tenant: Tenant, *, concurrency: int = 16) -> None:
        self.system = system
        self.tenant = tenant
        self.concurrency = concurrency
        self.sent = Sent()

    @property
    def accepted(self) -> int:
        return sum(len(ids) for ids in self.sent.accepted.values())

    def start(self, counts: dict[str, int], prefix: str, *,
              pace: float | None = None) -> asyncio.Task[Sent]:
        """Start sending ``counts[channel]`` messages of each channel, interleaved; the task ends
        when every one is accepted (or given up). ``pace``: requests per second (None: at once)."""
        queues = {c: [request_for(c, self.tenant, i, prefix) for i in range(n)]
                  for c, n in counts.items()}
        order: list[tuple[str, str, dict[str, Any]]] = []
        while any(queues.values()):
            for channel, pending in queues.items():
                if pending:
                    order.append((channel, *pending.pop(0)))
        return asyncio.create_task(self._run(order, pace))

    async def _run(self, bodies: list[tuple[str, str, dict[str, Any]]], pace: float | None) -> Sent:
        semaphore = asyncio.Semaphore(self.concurrency)
        limits = httpx.Limits(max_connections=self.concurrency * 2)
        async with httpx.AsyncClient(base_url=self.system.info["gateway"], timeout=30,
                                     limits=limits) as client:
            async def one(i: int, channel: str, path: str, body: dict[str, Any]) -> None:
                if pace:
                    await asyncio.sleep(i / pace)
                async with semaphore:
                    await self._send(client, channel, path, body)

            await asyncio.gather(*(one(i, *item) for i, item in enumerate(bodies)))
        return self.sent

    async def _send(self, client: httpx.AsyncClient, channel: str, path: str,
                    body: dict[str, Any]) -> None:
        key = uuid.uuid4().hex
        headers = {**self.tenant.auth, "Idempotency-Key": key}
        deadline = time.monotonic() + SEND_DEADLINE
        while time.monotonic() < deadline:
            try:
                r = await client.post(path, headers=headers, json=body)
            except httpx.TransportError as exc:  # the gateway went away mid-request: retry, same key
                self.sent.answers.append(Answer(time.monotonic(), None, repr(exc), None, None))
                await asyncio.sleep(0.5)
                continue
            payload = _json(r)
            error = payload.get("error") if isinstance(payload, dict) else None
            self.sent.answers.append(Answer(time.monotonic(), r.status_code, error,
                                            r.headers.get("retry-after"), payload))
            if r.status_code == 201:
                self.sent.accepted[channel].append(payload["data"]["id"])
                return
            if r.status_code in (503, 429) or error == "idempotency_request_in_progress":
                await asyncio.sleep(min(_seconds(r.headers.get("retry-after")), 2.0))
                continue
            self.sent.gave_up.append(f"{r.status_code} {r.text[:300]}")
            return
        self.sent.gave_up.append(f"not accepted within {SEND_DEADLINE:.0f}s")


def _json(r: httpx.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return r.text


def _seconds(value: str | None) -> float:
    try:
        return max(0.2, float(value)) if value else 0.5
    except ValueError:
        return 0.5
