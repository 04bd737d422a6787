"""Load against the running system over HTTP, the way a customer would, with httpx.AsyncClient."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import httpx

from .stats import latency_summary


def _body(sender_id: str, i: int) -> dict[str, Any]:
    return {"to": f"+4479111{i % 100000:05d}", "body": f"bench {i}", "senderId": sender_id}


async def accept(client: httpx.AsyncClient, key: str, sender_id: str, count: int,
                 in_flight: int, offset: int = 0) -> tuple[dict[str, Any], list[str]]:
    """``count`` sends of ``POST /v1/sms/send`` with ``in_flight`` concurrent; per-request latency."""
    auth = {"Authorization": f"Bearer {key}"}
    latencies: list[float] = []
    ids: list[str] = []
    errors: dict[str, int] = {}
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            i = next_index
            next_index += 1
            t0 = time.perf_counter()
            try:
                r = await client.post("/v1/sms/send", headers=auth, json=_body(sender_id, offset + i))
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            latencies.append(time.perf_counter() - t0)
            if r.status_code == 201:
                ids.append(str(r.json()["data"]["id"]))
            else:
                errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    seconds = time.perf_counter() - start
    return {"in_flight": in_flight, "requests": count, "accepted": len(ids), "errors": errors,
            "seconds": round(seconds, 3), "accepted_per_s": round(len(ids) / seconds, 1),
            **latency_summary(latencies)}, ids


async def count_sms(client: httpx.AsyncClient, key: str, status: str | None = None) -> int:
    params = {"pageSize": "1", **({"status": status} if status else {})}
    r = await client.get("/v1/sms", headers={"Authorization": f"Bearer {key}"}, params=params)
    r.raise_for_status()
    return int(r.json()["pagination"]["total"])


async def wait_delivered(client: httpx.AsyncClient, key: str, target: int,
                         timeout: float) -> dict[str, Any]:
    """Bounded poll until ``target`` SMS of the tenant are DELIVERED; returns what it saw."""
    start = time.perf_counter()
    delivered = failed = 0
    while time.perf_counter() - start < timeout:
        delivered = await count_sms(client, key, "DELIVERED")
        if delivered >= target:
            break
        await asyncio.sleep(0.5)
    failed = await count_sms(client, key, "FAILED")
    return {"target": target, "delivered": delivered, "failed": failed,
            "complete": delivered >= target, "waited_s": round(time.perf_counter() - start, 2)}


async def paced_send(client: httpx.AsyncClient, key: str, sender_id: str, count: int,
                     rate: float, offset: int) -> tuple[list[str], float, int]:
    """``count`` sends started at a fixed ``rate`` per second (open loop); ids, seconds, errors."""
    auth = {"Authorization": f"Bearer {key}"}
    start = time.perf_counter()

    async def one(i: int) -> str | None:
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        try:
            r = await client.post("/v1/sms/send", headers=auth, json=_body(sender_id, offset + i))
        except httpx.HTTPError:
            return None
        return str(r.json()["data"]["id"]) if r.status_code == 201 else None

    results = await asyncio.gather(*(one(i) for i in range(count)))
    ids = [r for r in results if r]
    return ids, time.perf_counter() - start, count - len(ids)


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def timeline_latencies(client: httpx.AsyncClient, key: str, ids: list[str],
                             concurrency: int = 10) -> dict[str, Any]:
    """QUEUED→SENT and QUEUED→DELIVERED from each message's timeline (server clocks, ms precision)."""
    auth = {"Authorization": f"Bearer {key}"}
    limit = asyncio.Semaphore(concurrency)
    to_sent: list[float] = []
    to_delivered: list[float] = []
    missing = 0

    async def one(message_id: str) -> None:
        nonlocal missing
        async with limit:
            r = await client.get(f"/v1/sms/{message_id}/timeline", headers=auth)
        first: dict[str, datetime] = {}
        for entry in r.json()["data"] if r.status_code == 200 else []:
            if entry.get("occurredAt") and entry["status"] not in first:
                first[entry["status"]] = _ts(entry["occurredAt"])
        if "QUEUED" not in first or "DELIVERED" not in first:
            missing += 1
            return
        to_delivered.append((first["DELIVERED"] - first["QUEUED"]).total_seconds())
        if "SENT" in first:
            to_sent.append((first["SENT"] - first["QUEUED"]).total_seconds())

    await asyncio.gather(*(one(i) for i in ids))
    return {"queued_to_delivered": latency_summary(to_delivered),
            "queued_to_sent": latency_summary(to_sent), "without_delivered": missing}
