"""Raw limits of this box: RabbitMQ confirmed publish + consume, SecantusDB writes."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aio_pika
from pymongo import AsyncMongoClient, UpdateOne

from postwire_testing.servers import SecantusProcess

PAYLOAD = b'{"message_id":"01J000000000000000000000000","to":"+447911123456","body":"Hello"}' * 3


async def rabbit_roundtrip(amqp_url: str, count: int, window: int = 50,
                           timeout: float = 120.0) -> dict[str, Any]:
    """Persistent publishes with confirms (``window`` unconfirmed at most) through a temporary queue,
    consumed (manual ack, prefetch 100) at the same time. Round trip = first publish to last ack."""
    connection = await aio_pika.connect_robust(amqp_url)
    try:
        pub = await connection.channel(publisher_confirms=True)
        sub = await connection.channel()
        await sub.set_qos(prefetch_count=100)
        queue = await sub.declare_queue(f"bench-{uuid.uuid4().hex[:8]}", exclusive=True,
                                        auto_delete=True)
        done = asyncio.Event()
        received = 0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal received
            await message.ack()
            received += 1
            if received >= count:
                done.set()

        tag = await queue.consume(on_message)
        limit = asyncio.Semaphore(window)

        async def publish(i: int) -> None:
            async with limit:
                await pub.default_exchange.publish(
                    aio_pika.Message(PAYLOAD, message_id=str(i),
                                     delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=queue.name)

        start = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(publish(i) for i in range(count))), timeout)
        published = time.perf_counter() - start
        await asyncio.wait_for(done.wait(), timeout)
        roundtrip = time.perf_counter() - start
        await queue.cancel(tag)
        return {"messages": count, "confirm_window": window, "payload_bytes": len(PAYLOAD),
                "publish_confirmed_per_s": round(count / published, 1),
                "roundtrip_per_s": round(count / roundtrip, 1),
                "seconds": round(roundtrip, 3)}
    finally:
        await connection.close()


def _doc(i: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"_id": f"bench{i:08d}", "tenant_id": "ten_bench", "channel": "sms", "status": "QUEUED",
            "to": "+447911123456", "body": "Hello", "sender_id": "Postwire", "accepted_at": now,
            "published": False, "timeline": [{"status": "QUEUED", "occurred_at": now}]}


async def secantus_writes(url: str, docs: int, updates: int, concurrency: int = 50,
                          batch: int = 500) -> dict[str, Any]:
    """insert_many of message-shaped documents, then update_one by _id ($set + $push), sequentially
    and ``concurrency`` at a time, in a scratch database that is dropped afterwards."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, serverSelectionTimeoutMS=10000)
    db = client[f"bench_{uuid.uuid4().hex[:8]}"]
    try:
        coll = db["messages"]
        start = time.perf_counter()
        for first in range(0, docs, batch):
            await coll.insert_many([_doc(i) for i in range(first, min(docs, first + batch))],
                                   ordered=False)
        insert_s = time.perf_counter() - start

        def update(i: int) -> Any:
            return coll.update_one({"_id": f"bench{i % docs:08d}"},
                                   {"$set": {"status": "SENT"},
                                    "$push": {"timeline": {"status": "SENT", "n": i}}})

        sequential = max(1, updates // 5)
        start = time.perf_counter()
        for i in range(sequential):
            await update(i)
        seq_s = time.perf_counter() - start

        limit = asyncio.Semaphore(concurrency)

        async def limited(i: int) -> None:
            async with limit:
                await update(i)

        start = time.perf_counter()
        await asyncio.gather(*(limited(i) for i in range(updates)))
        conc_s = time.perf_counter() - start

        bulk_batch = 200
        start = time.perf_counter()
        for first in range(0, updates, bulk_batch):
            await coll.bulk_write([
                UpdateOne({"_id": f"bench{i % docs:08d}"},
                          {"$set": {"status": "DELIVERED"},
                           "$push": {"timeline": {"status": "DELIVERED", "n": i}}})
                for i in range(first, min(updates, first + bulk_batch))], ordered=False)
        bulk_s = time.perf_counter() - start
        return {"bulk_batch": bulk_batch, "bulk_update_ops_per_s": round(updates / bulk_s, 1),
                "insert_many_docs": docs, "batch": batch,
                "insert_many_docs_per_s": round(docs / insert_s, 1),
                "update_one_sequential": sequential,
                "update_one_sequential_per_s": round(sequential / seq_s, 1),
                "update_one_concurrent": updates, "concurrency": concurrency,
                "update_one_concurrent_per_s": round(updates / conc_s, 1)}
    finally:
        await client.drop_database(db.name)
        await client.close()


async def secantus_standalone(docs: int, updates: int) -> dict[str, Any]:
    """A SecantusDB started for the purpose (own port and storage, ``--standalone`` as ``make run``
    starts it), measured, then stopped."""
    server = SecantusProcess()
    await asyncio.to_thread(server.start)
    try:
        result = await asyncio.wait_for(secantus_writes(server.url, docs, updates), 300)
        return {"server": "SecantusProcess --standalone", **result}
    finally:
        await asyncio.to_thread(server.stop)
