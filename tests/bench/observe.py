"""What the orchestrator watches: the carrier's submits and receipts, the customer's webhooks, the queues.

- ``TimedSmsc``: the SMSC simulator of ``postwire_testing`` that also stamps when it wrote each
  delivery receipt (``receipt_at``), for "receipt → customer webhook".
- ``Hooks``: an incremental index over the webhook receiver's requests: (type, message id) → arrival.
- ``QueueSampler``: every work queue's depth (messages ready) by passive declares, once per interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import httpx

from postwire_contracts import topology
from postwire_testing.receiver import WebhookReceiver
from postwire_testing.smsc import SmscSimulator, _Receipt


class TimedSmsc(SmscSimulator):
    """An ``SmscSimulator`` that remembers when the receipt of each reference (our id) went out."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.receipt_at: dict[str, float] = {}

    async def _deliver_receipt(self, receipt: _Receipt) -> None:
        reference = receipt.submit.reference
        if reference is not None and reference not in self.receipt_at:
            self.receipt_at[reference] = time.time()
        await super()._deliver_receipt(receipt)

    def first_submits(self) -> dict[str, float]:
        """Our message id → when its first accepted submit_sm arrived (epoch seconds)."""
        out: dict[str, float] = {}
        for s in self.submits:
            if s.reference is not None and s.reference not in out:
                out[s.reference] = s.received_at.timestamp()
        return out

    def submit_counts(self) -> dict[str, int]:
        return {str(k): v for k, v in self.counts().items() if k is not None}


@dataclass
class Hooks:
    """Webhook arrivals by (event type, message id); duplicates (same webhook-id) are counted."""

    receiver: WebhookReceiver
    seen: int = 0
    first: dict[tuple[str, str], float] = field(default_factory=dict)
    by_type: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    webhook_ids: set[str] = field(default_factory=set)

    def update(self) -> None:
        """Index the requests that arrived since the last call."""
        requests = self.receiver.requests
        for r in requests[self.seen:]:
            wid = r.headers.get("webhook-id", "")
            if wid in self.webhook_ids:
                self.duplicates += 1
                continue
            self.webhook_ids.add(wid)
            payload = json.loads(r.body)
            kind = str(payload.get("type"))
            mid = str((payload.get("data") or {}).get("messageId"))
            self.by_type[kind] = self.by_type.get(kind, 0) + 1
            self.first.setdefault((kind, mid), r.received_at.timestamp())
        self.seen = len(requests)

    def count(self, kind: str, ids: set[str]) -> int:
        self.update()
        return sum(1 for mid in ids if (kind, mid) in self.first)


WATCHED = [topology.SMS_SEND_QUEUE, topology.SMS_OTP_QUEUE, topology.REPORTING_QUEUE,
           topology.FANOUT_QUEUE, topology.FANOUT_DELIVERY_QUEUE]


class QueueSampler:
    """Samples the depth of the watched queues (and their dead-letter queues) in the background."""

    def __init__(self, amqp_url: str, interval: float = 1.0) -> None:
        self.amqp_url = amqp_url
        self.interval = interval
        self.samples: list[tuple[float, dict[str, int]]] = []
        self._task: asyncio.Task[None] | None = None
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self.amqp_url)
        self._task = asyncio.create_task(self._run())

    async def depths(self) -> dict[str, int]:
        assert self._connection is not None
        out: dict[str, int] = {}
        channel = await self._connection.channel()
        try:
            for name in WATCHED + [topology.dead_letter_queue(q) for q in WATCHED]:
                try:
                    q = await channel.declare_queue(name, passive=True)
                except aio_pika.exceptions.ChannelClosed:
                    channel = await self._connection.channel()
                    continue
                out[name] = int(q.declaration_result.message_count or 0)
        finally:
            with contextlib.suppress(Exception):
                await channel.close()
        return out

    async def _run(self) -> None:
        while True:
            started = time.time()
            with contextlib.suppress(Exception):  # a missed sample is only a gap in the series
                self.samples.append((started, await self.depths()))
            await asyncio.sleep(max(0.0, self.interval - (time.time() - started)))

    def window(self, start: float, end: float) -> list[tuple[float, dict[str, int]]]:
        return [(t, d) for t, d in self.samples if start <= t <= end]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._connection is not None:
            await self._connection.close()


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope (units per second) of (time, value) points; 0 for fewer than 3."""
    if len(points) < 3:
        return 0.0
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return 0.0 if den == 0 else sum((t - mt) * (v - mv) for t, v in points) / den


FANOUT_COUNTERS = ("postwire_webhook_set_aside_total", "postwire_webhook_first_attempts_total")


async def fanout_counters(url: str) -> dict[str, float]:
    """webhook-fanout's set-aside and first-attempt counters from its ``/metrics``, by label
    (``set_aside:endpoint_busy``, ``first_attempts:inline``...); empty when it cannot be read."""
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            text = (await client.get(f"{url}/metrics")).text
    except httpx.HTTPError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        name, _, rest = line.partition("{")
        if name not in FANOUT_COUNTERS:
            continue
        labels, _, value = rest.partition("} ")
        label = labels.split('="', 1)[-1].rstrip('"')
        short = name.removeprefix("postwire_webhook_").removesuffix("_total")
        out[f"{short}:{label}"] = float(value)
    return out


def counter_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    return {k: int(v - before.get(k, 0.0)) for k, v in sorted(after.items())
            if v - before.get(k, 0.0)}
