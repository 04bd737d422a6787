"""What every fault scenario checks at its end.

1. Every accepted message reached a final status (read through the API, as the customer would).
2. Each reached the carrier, the recipient's MX or the Graph API at most once (delivered ones exactly
   once).
3. Every webhook the tenant subscribed to was delivered, deduplicated by ``webhook-id`` at the
   receiver, correctly signed; one ``webhook-id`` per message and event type.
4. No queue holds anything but the dead letters the scenario expects (passive declares over every
   queue in ``postwire_platform.broker.BINDINGS`` and its ``.dead`` queue, and ``list_queues`` for the
   delay queues too).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aio_pika
import httpx

from postwire_contracts import topology
from postwire_platform.broker import BINDINGS
from postwire_testing.receiver import ReceivedRequest
from postwire_testing.system import DevSystem

from .load import Sent, Tenant
from .world import World

FINAL = {"DELIVERED", "FAILED", "READ"}
CHANNEL_PATH = {"sms": "/v1/sms", "email": "/v1/emails", "whatsapp": "/v1/whatsapp"}


async def eventually(check: Callable[[], Awaitable[str | None]], timeout: float,
                     pause: float = 1.0) -> None:
    """Poll ``check`` (None: holds; else what is still wrong) until it holds; fail with its last word."""
    deadline = time.monotonic() + timeout
    while True:
        problem = await check()
        if problem is None:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout:.0f}s: {problem}")
        await asyncio.sleep(pause)


async def final_statuses(system: DevSystem, tenant: Tenant, ids: list[str], channel: str = "sms",
                         timeout: float = 300.0) -> dict[str, dict[str, Any]]:
    """Wait until every message in ``ids`` has a final status; return each message as read."""
    pending = set(ids)
    seen: dict[str, dict[str, Any]] = {}
    semaphore = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=system.info["gateway"], timeout=30) as client:
        async def read(message_id: str) -> None:
            async with semaphore:
                r = await client.get(f"{CHANNEL_PATH[channel]}/{message_id}", headers=tenant.auth)
            assert r.status_code in (200, 503), f"GET {message_id}: {r.status_code} {r.text}"
            if r.status_code == 200:
                seen[message_id] = r.json()["data"]
                if seen[message_id]["status"] in FINAL:
                    pending.discard(message_id)

        async def done() -> str | None:
            await asyncio.gather(*(read(m) for m in list(pending)))
            if not pending:
                return None
            sample = sorted(pending)[:3]
            return (f"{len(pending)} of {len(ids)} {channel} messages not final, e.g. "
                    f"{[(m, seen.get(m, {}).get('status')) for m in sample]}")

        await eventually(done, timeout, pause=2.0)
    return seen


def provider_at_most_once(world: World, channel: str,
                          messages: Mapping[str, dict[str, Any]]) -> None:
    """Each message reached its provider (carrier, MX, Graph API) at most once; a delivered one
    exactly once."""
    counts = world.provider_counts(channel)
    twice = {m: n for m, n in counts.items() if m in messages and n > 1}
    assert not twice, f"{channel}: sent to the provider more than once: {dict(list(twice.items())[:5])}"
    reached = [m for m, doc in messages.items() if doc["status"] in ("DELIVERED", "READ")]
    missing = [m for m in reached if counts.get(m, 0) != 1]
    assert not missing, f"{channel}: delivered but never accepted by the provider: {missing[:5]}"


def expected_webhooks(messages: Mapping[str, dict[str, Any]], channel: str = "sms") -> set[tuple[str, str]]:
    """(message id, event type) pairs the customer must receive for these final messages."""
    expected: set[tuple[str, str]] = set()
    for message_id, doc in messages.items():
        status = doc["status"]
        expected.add((message_id, f"{channel}_{status.lower()}"))
        if status in ("DELIVERED", "READ") or doc.get("providerMessageId"):
            expected.add((message_id, f"{channel}_sent"))
        if status == "READ":
            expected.add((message_id, f"{channel}_delivered"))
    return expected


def _by_webhook_id(requests: list[ReceivedRequest]) -> dict[str, ReceivedRequest]:
    unique: dict[str, ReceivedRequest] = {}
    for request in requests:
        unique.setdefault(request.headers.get("webhook-id", ""), request)
    return unique


async def webhooks_delivered(system: DevSystem, tenant: Tenant, expected: set[tuple[str, str]],
                             timeout: float = 300.0) -> None:
    """Every expected (message, type) reached the customer, once per ``webhook-id``, signed; a type
    delivered under several ``webhook-id``s must stand for as many recorded events of the message."""
    from standardwebhooks import Webhook

    verifier = Webhook(tenant.secret)

    def pairs() -> dict[tuple[str, str], set[str]]:
        got: dict[tuple[str, str], set[str]] = defaultdict(set)
        for webhook_id, request in _by_webhook_id(tenant.customer.requests).items():
            payload = request.json()
            data = payload.get("data") or {}
            got[(str(data.get("messageId")), str(payload.get("type")))].add(webhook_id)
        return got

    async def all_there() -> str | None:
        missing = expected - set(pairs())
        if not missing:
            return None
        return f"{len(missing)} of {len(expected)} webhooks not delivered, e.g. {sorted(missing)[:3]}"

    await eventually(all_there, timeout, pause=1.0)
    unique = _by_webhook_id(tenant.customer.requests)
    assert "" not in unique, "a delivery without a webhook-id header"
    for request in unique.values():
        verifier.verify(request.body, request.headers)
    several = {k: v for k, v in pairs().items() if k in expected and len(v) > 1}
    async with httpx.AsyncClient(base_url=system.info["gateway"], timeout=30) as client:
        for (message_id, event_type), ids in several.items():
            channel = event_type.split("_", 1)[0]
            path = CHANNEL_PATH["email" if channel == "email" else channel]
            r = await client.get(f"{path}/{message_id}/timeline", headers=tenant.auth)
            assert r.status_code == 200, r.text
            events = [e for e in r.json()["data"]
                      if (e.get("eventType") or f"{channel}_{str(e['status']).lower()}") == event_type]
            assert len(ids) <= len(events), (
                f"{event_type} of {message_id} delivered under {len(ids)} webhook-ids for "
                f"{len(events)} recorded event(s): a duplicate notification")


async def queue_depths(amqp_url: str) -> dict[str, int]:
    """Messages waiting in every work queue and dead-letter queue (passive declares)."""
    connection = await aio_pika.connect(amqp_url, timeout=10)
    try:
        depths: dict[str, int] = {}
        for name in [*BINDINGS, *(topology.dead_letter_queue(q) for q in BINDINGS)]:
            channel = await connection.channel()
            queue = await channel.declare_queue(name, passive=True)
            depths[name] = int(queue.declaration_result.message_count or 0)
            await channel.close()
        return depths
    finally:
        await connection.close()


async def queues_clean(amqp_url: str, list_queues: Callable[[], dict[str, int]] | None,
                       expected_dead: Mapping[str, int] | None = None,
                       timeout: float = 120.0) -> None:
    """Every queue drains; dead-letter queues hold exactly ``expected_dead`` (default: nothing).

    ``list_queues`` (``rabbitmqctl list_queues`` on the system's vhost) also covers the delay queues.
    """
    wanted = {topology.dead_letter_queue(q): 0 for q in BINDINGS}
    wanted.update(expected_dead or {})

    async def clean() -> str | None:
        depths = await queue_depths(amqp_url)
        if list_queues is not None:
            depths.update(await asyncio.to_thread(list_queues))
        wrong = {q: n for q, n in depths.items() if n != wanted.get(q, 0)}
        return None if not wrong else f"queues not as expected: {wrong} (expected dead: {wanted})"

    await eventually(clean, timeout, pause=1.0)


DEFAULT_FINAL = {"sms": {"DELIVERED"}, "email": {"DELIVERED"}, "whatsapp": {"READ"}}


async def everything(world: World, tenant: Tenant, sent: Sent, *,
                     allowed: Mapping[str, set[tuple[str, str | None]]] | None = None,
                     expected_dead: Mapping[str, int] | None = None) -> None:
    """All four checks for a load of every channel.

    Every message must end in its channel's normal final status (SMS and email DELIVERED, WhatsApp
    READ), or in one of the ``allowed[channel]`` (status, error code) pairs a scenario accepts.
    """
    assert not sent.gave_up and not sent.unexpected(), (sent.gave_up[:5], sent.unexpected()[:5])
    expected: set[tuple[str, str]] = set()
    for channel, ids in sent.accepted.items():
        if not ids:
            continue
        assert len(ids) == len(set(ids)), f"{channel}: the gateway gave one id to two messages"
        messages = await final_statuses(world.system, tenant, ids, channel)
        fine = {(s, None) for s in DEFAULT_FINAL[channel]} | set((allowed or {}).get(channel, ()))
        wrong = {m: (d["status"], d.get("errorCode")) for m, d in messages.items()
                 if (d["status"], None) not in fine and (d["status"], d.get("errorCode")) not in fine}
        assert not wrong, f"{channel}: unexpected final statuses: {dict(list(wrong.items())[:5])}"
        provider_at_most_once(world, channel, messages)
        expected |= expected_webhooks(messages, channel)
    assert expected, "the scenario accepted nothing"
    await webhooks_delivered(world.system, tenant, expected)
    await queues_clean(world.broker.url, world.broker.list_queues, expected_dead)
