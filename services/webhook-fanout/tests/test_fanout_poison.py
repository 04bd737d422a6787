"""webhook-fanout's three queues hand their handlers the raw body: an undecodable message on any of them
is dead-lettered once, and a good notification right behind it is delivered."""

from __future__ import annotations

import asyncio

import aio_pika
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts import topology
from postwire_platform.mongo import Document
from postwire_testing.receiver import WebhookReceiver

from .fanout_support import count, endpoint, note, publish, running_fanout

QUEUES = [topology.FANOUT_QUEUE, topology.FANOUT_DELIVERY_QUEUE, topology.FANOUT_COMMAND_QUEUE]


async def test_an_undecodable_message_is_dead_lettered_and_the_next_one_delivered(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    async with WebhookReceiver() as hooks:
        secret, _ = await endpoint(db, "ten_p", hooks.url)
        async with running_fanout(amqp_url, mongodb_url, db_name) as publisher:
            connection = await aio_pika.connect(amqp_url, timeout=10)
            try:
                channel = await connection.channel(publisher_confirms=True)
                for queue in QUEUES:
                    await channel.default_exchange.publish(
                        aio_pika.Message(b"\xff not JSON {", message_id=f"poison-{queue}",
                                         content_type="application/json"),
                        routing_key=queue)
                good = note("ten_p")
                await publish(publisher, good)
                [request] = await hooks.wait_for(count(1))
                dead: dict[str, list[str]] = {queue: [] for queue in QUEUES}
                deadline = asyncio.get_running_loop().time() + 15
                while any(not ids for ids in dead.values()):
                    assert asyncio.get_running_loop().time() < deadline, dead
                    for queue in QUEUES:
                        parked = await channel.declare_queue(topology.dead_letter_queue(queue),
                                                             passive=True)
                        while (got := await parked.get(no_ack=True, fail=False)) is not None:
                            dead[queue].append(str(got.message_id))
                    await asyncio.sleep(0.1)
            finally:
                await connection.close()
    assert dead == {queue: [f"poison-{queue}"] for queue in QUEUES}
    assert hooks.verify(secret, request)["data"]["messageId"] == good.message_id
