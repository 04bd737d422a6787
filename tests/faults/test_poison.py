"""An undecodable message on every queue goes to that queue's dead-letter queue, once, and the
consumers carry on: a load sent right behind the poison is delivered in full.
"""

from __future__ import annotations

import aio_pika

from postwire_contracts import topology
from postwire_platform.broker import BINDINGS

from . import checks
from .fakes import Customer
from .load import Load, mix, new_tenant
from .world import World

POISON = [b"\xff\xfe not JSON at all {", b"[]", b'{"kind": 17, "message_id": ["not", "a", "string"]}']
"""Bytes no consumer can decode: not JSON, JSON of the wrong shape, an object whose fields have the
wrong types. (A well-formed message of a kind a queue does not know is not poison everywhere:
webhook-fanout's notification queue skips kinds without webhooks, by design.)"""


async def _publish_poison(amqp_url: str) -> None:
    connection = await aio_pika.connect(amqp_url, timeout=10)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        for queue in BINDINGS:
            for n, body in enumerate(POISON):
                await channel.default_exchange.publish(
                    aio_pika.Message(body, message_id=f"poison-{queue}-{n}",
                                     content_type="application/json",
                                     delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=queue)
    finally:
        await connection.close()


async def _drain_dead(amqp_url: str) -> dict[str, list[str]]:
    """Take every message off the dead-letter queues; their message ids per queue."""
    connection = await aio_pika.connect(amqp_url, timeout=10)
    found: dict[str, list[str]] = {}
    try:
        channel = await connection.channel()
        for queue in BINDINGS:
            dead = await channel.declare_queue(topology.dead_letter_queue(queue), passive=True)
            ids = found.setdefault(queue, [])
            while (message := await dead.get(no_ack=True, fail=False)) is not None:
                ids.append(str(message.message_id))
    finally:
        await connection.close()
    return found


async def test_undecodable_messages_are_dead_lettered_and_consumers_carry_on(world: World) -> None:
    broker = world.broker
    with Customer() as customer:
        tenant = await new_tenant(world, customer, "poison")
        await _publish_poison(broker.url)
        sent = await Load(world.system, tenant).start(mix(), "po")
        expected_dead = {topology.dead_letter_queue(q): len(POISON) for q in BINDINGS}
        await checks.everything(world, tenant, sent, expected_dead=expected_dead)
    parked = await _drain_dead(broker.url)
    assert {q: sorted(ids) for q, ids in parked.items()} == {
        q: [f"poison-{q}-{n}" for n in range(len(POISON))] for q in BINDINGS}
    await checks.queues_clean(broker.url, broker.list_queues)
