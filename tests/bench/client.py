"""The load client, run in its own process: ``python -m tests.bench.client PLAN.json RESULT.json``.

It sends ``POST /v1/sms/send`` (or ``/v1/emails/send`` with ``channel: email``) the way the plan
says and records, per request, the message id, the scheduled, start and end times (wall clock, seconds
since the epoch, so the orchestrator can join them with the carrier's and the webhook receiver's
stamps), the HTTP status and the gateway's ``acceptedAt``.

Phases:
- ``closed``: ``count`` requests, ``in_flight`` at a time (each worker sends its next one when the
  previous answer arrived);
- ``paced``: an open loop at ``rate`` per second for ``count`` requests; a request's latency counts from
  its scheduled time, so a gateway that falls behind is not hidden (coordinated omission); at most
  ``max_in_flight`` are outstanding, the rest wait for a connection;
- ``burst``: ``closed`` with one ``flow: OTP`` request sent, on its own connection, when request
  ``otp_at`` starts.
Everything is bounded by ``deadline`` seconds; requests not started by then are not sent.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import msgspec

from .http11 import Pool, post_json


class _Data(msgspec.Struct):
    id: str
    acceptedAt: str | None = None


class _Accepted(msgspec.Struct):
    data: _Data


_decode = msgspec.json.Decoder(_Accepted).decode
_encode = msgspec.json.Encoder().encode

Row = list[Any]
"""[message id | None, scheduled, started, ended, status | error name, acceptedAt | None]"""


class Sender:
    def __init__(self, plan: dict[str, Any]) -> None:
        url = urlsplit(plan["gateway"])
        self.host = f"{url.hostname}:{url.port}"
        self.pool = Pool(str(url.hostname), int(url.port or 80), int(plan.get("connections", 64)))
        self.headers = {"Authorization": f"Bearer {plan['key']}"}
        self.sender = plan["sender"]
        self.channel = plan.get("channel", "sms")
        self.path = {"email": "/v1/emails/send", "whatsapp": "/v1/whatsapp/send"}.get(
            self.channel, "/v1/sms/send")
        self.prefix = plan.get("prefix", "+447911")
        self.offset = int(plan.get("offset", 0))
        self.wall0 = time.time()
        self.perf0 = time.perf_counter()

    def now(self) -> float:
        """Wall-clock seconds, advanced by the monotonic clock (no jumps inside a phase)."""
        return self.wall0 + (time.perf_counter() - self.perf0)

    def body(self, i: int, otp: bool = False) -> bytes:
        n = self.offset + i
        if self.channel == "email":
            return _encode({"from": self.sender, "to": [f"user{n}@inbox.bench.example"],
                            "subject": f"bench {n}", "text": f"Hello {n}, this is a benchmark.",
                            "trackOpens": False, "trackClicks": False})
        if self.channel == "whatsapp":  # one recipient each: Meta paces a recipient to ~1 per 6 s
            return _encode({"to": f"+447911{n % 1_000_000:06d}", "text": f"bench {n}"})
        payload: dict[str, Any] = {"to": f"{self.prefix}{n % 1_000_000:06d}", "body": f"bench {n}",
                                   "senderId": self.sender}
        if otp:
            payload.update(flow="OTP", body=f"Your code is {n % 1_000_000:06d}")
        return _encode(payload)

    async def send(self, i: int, scheduled: float, pool: Pool | None = None, otp: bool = False) -> Row:
        request = post_json(self.host, self.path, self.headers, self.body(i, otp))
        started = self.now()
        try:
            response = await (pool or self.pool).request(request)
        except Exception as exc:  # reported per request; the phase goes on
            return [None, scheduled, started, self.now(), type(exc).__name__, None]
        ended = self.now()
        if response.status != 201:
            return [None, scheduled, started, ended, response.status, None]
        data = _decode(response.body).data
        return [data.id, scheduled, started, ended, 201, data.acceptedAt]


async def closed(sender: Sender, count: int, in_flight: int, deadline: float,
                 otp_at: int | None = None) -> dict[str, Any]:
    rows: list[Row] = []
    otp: list[Row] = []
    next_index = 0
    otp_pool = Pool(sender.pool.host, sender.pool.port, 1)
    otp_tasks: list[asyncio.Task[Row]] = []
    end = time.perf_counter() + deadline

    async def worker() -> None:
        nonlocal next_index
        while next_index < count and time.perf_counter() < end:
            i = next_index
            next_index += 1
            if i == otp_at:
                otp_tasks.append(asyncio.create_task(
                    sender.send(count, sender.now(), pool=otp_pool, otp=True)))
            rows.append(await sender.send(i, sender.now()))

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    otp = list(await asyncio.gather(*otp_tasks))
    otp_pool.close()
    return {"rows": rows, "otp": otp[0] if otp else None}


async def paced(sender: Sender, count: int, rate: float, deadline: float) -> dict[str, Any]:
    rows: list[Row] = []
    tasks: set[asyncio.Task[None]] = set()
    start = time.perf_counter()

    async def one(i: int, scheduled: float) -> None:
        rows.append(await sender.send(i, scheduled))

    for i in range(count):
        due = start + i / rate
        if due - start > deadline:
            break
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i, sender.wall0 + (due - sender.perf0)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    remaining = max(1.0, deadline - (time.perf_counter() - start) + 30)
    if tasks:
        await asyncio.wait(set(tasks), timeout=remaining)
    return {"rows": rows, "otp": None}


async def run(plan: dict[str, Any]) -> dict[str, Any]:
    sender = Sender(plan)
    cpu0 = _cpu()
    deadline = float(plan.get("deadline", 600))
    phase = plan["phase"]
    try:
        if phase == "paced":
            out = await paced(sender, int(plan["count"]), float(plan["rate"]), deadline)
        else:
            out = await closed(sender, int(plan["count"]), int(plan["in_flight"]), deadline,
                               plan.get("otp_at") if phase == "burst" else None)
    finally:
        sender.pool.close()
    return {**out, "cpu_s": round(_cpu() - cpu0, 3)}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    plan_path, result_path = sys.argv[1], sys.argv[2]
    with open(plan_path) as f:
        plan = json.load(f)
    result = asyncio.run(run(plan))
    with open(result_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
