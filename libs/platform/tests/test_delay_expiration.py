"""A per-message expiration shortens a message's stay in its delay queue (how webhook retries jitter)."""

from __future__ import annotations

import asyncio

import aio_pika

from postwire_contracts import topology
from postwire_contracts.webhooks import ReplayDelivery
from postwire_platform.broker import Publisher, declare_topology, make_broker
from postwire_platform.clock import utcnow


async def test_an_expiration_under_the_queue_delay_brings_the_message_back_early(
        amqp_url: str) -> None:
    broker = make_broker(amqp_url)
    await broker.connect()
    target = topology.FANOUT_COMMAND_QUEUE
    await declare_topology(broker, {target: [600.0]})
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(target, ensure=True)
        await queue.purge()
        command = ReplayDelivery(command_id="c1", tenant_id="t", endpoint_id="we_1",
                                 webhook_id="msg_1", requested_at=utcnow())
        # a ten-minute delay queue; this message stays 0.2 s
        await Publisher(broker).delay(command, target, 600.0, message_id="c1", expiration=0.2)
        message = None
        for _ in range(200):  # bounded: 20 s, far below the queue's own 600 s
            message = await queue.get(no_ack=True, fail=False)
            if message is not None:
                break
            await asyncio.sleep(0.1)
        assert message is not None and message.message_id == "c1"
    finally:
        await connection.close()
        await broker.stop()
