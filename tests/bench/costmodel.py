"""``python -m tests.bench.costmodel [--replica-set]``: the database server's CPU per document for the
operations Postwire makes, on a SecantusDB started for the purpose with the real indexes
(docs/performance.md, cost model); standalone as ``make run`` starts it, or with ``--replica-set`` in
SecantusDB's default replica-set persona (an oplog entry per write) for comparison.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from pymongo import AsyncMongoClient, ReturnDocument, UpdateOne

from postwire_platform.mongo import INDEXES
from postwire_testing.servers import SecantusProcess

from .stats import cpu_seconds

N = 2000
SINGLE = 500


def message(i: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"_id": f"m{i:08d}", "tenant_id": "ten_demo", "channel": "sms", "live": True,
            "status": "QUEUED", "to": f"+447911{i % 1000000:06d}", "metadata": {},
            "external_id": None, "accepted_at": now, "updated_at": now, "sent_at": None,
            "delivered_at": None, "failed_at": None, "provider_message_id": None,
            "error_code": None, "error_reason": None, "published": False, "trace": None,
            "timeline": [entry(i, "QUEUED")], "body": f"bench {i}", "sender_id": "Postwire",
            "flow": "STANDARD", "segments": 1, "encoding": "GSM-7", "expires_at": None,
            "command": {"type": "send.sms.v1", "message_id": f"m{i:08d}", "body": "x"}}


def entry(i: int, status: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"event_id": f"m{i}:{status}", "status": status, "occurred_at": now, "recorded_at": now,
            "source": "x", "provider_message_id": None, "provider_status": None, "error_code": None,
            "error_reason": None, "detail": {}, "raw": None}


def small(i: int) -> dict[str, Any]:
    return {"_id": f"s{i}", "endpoint_id": "we", "tenant_id": "t", "message_id": f"m{i}",
            "event_id": "x", "outcome": "delivered"}


def mid(i: int) -> str:
    return f"m{i:08d}"


async def main() -> None:
    server = SecantusProcess()
    server.start()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(server.url)
    try:
        db = client["postwire"]
        messages, other = db["messages"], db["webhook_attempts"]
        await messages.create_indexes(INDEXES["messages"])
        await other.create_indexes(INDEXES["webhook_attempts"])
        assert server.proc is not None
        pid = server.proc.pid

        async def cost(name: str, units: int, run: Callable[[], Awaitable[None]]) -> None:
            c0, t0 = cpu_seconds(pid) or 0.0, time.perf_counter()
            await run()
            c1, t1 = cpu_seconds(pid) or 0.0, time.perf_counter()
            print(f"{name:48s} {1000 * (c1 - c0) / units:7.3f} ms CPU  "
                  f"{1000 * (t1 - t0) / units:7.3f} ms wall  per document")

        batches = [range(k, k + 100) for k in range(SINGLE, SINGLE + N, 100)]

        async def insert_one() -> None:
            for i in range(SINGLE):
                await messages.insert_one(message(i))

        async def insert_many() -> None:
            for b in batches:
                await messages.insert_many([message(i) for i in b], ordered=False)

        async def update_one() -> None:
            for i in range(SINGLE):
                await messages.update_one({"_id": mid(i)}, {"$set": {"status": "PROCESSING"}})

        async def update_many() -> None:
            for b in batches:
                await messages.update_many({"_id": {"$in": [mid(i) for i in b]}},
                                           {"$set": {"published": True}})

        async def bulk_push() -> None:
            for b in batches:
                await messages.bulk_write([UpdateOne(
                    {"_id": mid(i), "timeline.event_id": {"$ne": f"m{i}:SENT"}},
                    {"$push": {"timeline": entry(i, "SENT")}}) for i in b], ordered=False)

        async def bulk_status() -> None:
            for b in batches:
                await messages.bulk_write([UpdateOne(
                    {"_id": mid(i), "status": {"$in": ["QUEUED", "PROCESSING"]}},
                    {"$set": {"status": "SENT", "sent_at": datetime.now(UTC)}}) for i in b],
                    ordered=False)

        async def bulk_merged() -> None:
            for b in batches:
                await messages.bulk_write([UpdateOne(
                    {"_id": mid(i), "status": "SENT", "timeline.event_id": {"$nin": [f"m{i}:D"]}},
                    {"$push": {"timeline": {"$each": [entry(i, "D")]}},
                     "$set": {"status": "DELIVERED", "delivered_at": datetime.now(UTC)}})
                    for i in b], ordered=False)

        async def find_one_and_update() -> None:
            # SecantusDB writes it with {_id, $and: [filter]}, which no index serves: a scan of
            # the whole collection per call (2,500 documents here)
            for i in range(SINGLE // 5):
                await messages.find_one_and_update(
                    {"_id": mid(i), "status": "PROCESSING"}, {"$set": {"status": "SENT"}},
                    return_document=ReturnDocument.AFTER)

        async def find_one() -> None:
            for i in range(SINGLE):
                await messages.find_one({"_id": mid(i)})

        async def find_in() -> None:
            for b in batches:
                await messages.find({"_id": {"$in": [mid(i) for i in b]}},
                                    projection=["status", "timeline.event_id"]).to_list()

        async def small_one() -> None:
            for i in range(SINGLE):
                await other.insert_one(small(i))

        async def small_many() -> None:
            for b in batches:
                await other.insert_many([small(i) for i in b])

        async def idle() -> None:
            await asyncio.sleep(5)

        await cost("insert_one (message)", SINGLE, insert_one)
        await cost("insert_many of 100 (message)", N, insert_many)
        await cost("update_one $set", SINGLE, update_one)
        await cost("update_many of 100 ids $set", N, update_many)
        await cost("bulk_write of 100: timeline push", N, bulk_push)
        await cost("bulk_write of 100: status move", N, bulk_status)
        await cost("bulk_write of 100: push and status in one", N, bulk_merged)
        await cost("find_one_and_update by _id and status", SINGLE // 5, find_one_and_update)
        await cost("find_one by _id", SINGLE, find_one)
        await cost("find $in of 100, projected", N, find_in)
        await cost("insert_one (small document)", SINGLE, small_one)
        await cost("insert_many of 100 (small document)", N, small_many)
        await cost("idle, per second (one client's heartbeats)", 5, idle)
    finally:
        await client.close()
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
