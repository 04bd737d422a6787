"""Queue depth, dead letters, consumer lag and quorum queues, against the real RabbitMQ."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from faststream.rabbit import RabbitBroker
from prometheus_client import REGISTRY

from postwire_contracts import topology
from postwire_contracts.messages import SendSms
from postwire_platform.broker import (
    DEAD_EXCHANGE,
    Publisher,
    declare_topology,
    make_broker,
    queue_type,
    set_queue_type,
    work_queue,
)
from postwire_platform.clock import utcnow
from postwire_platform.queues import ConsumeMetricsMiddleware, QueueMonitor, monitor_for, waited
from postwire_testing.servers import rabbit_vhost


def _command(message_id: str) -> SendSms:
    return SendSms(message_id=message_id, tenant_id="ten_q", live=False, to="+447700900123",
                   body="hi", sender_id="Postwire", accepted_at=utcnow())


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[RabbitBroker]:
    b: RabbitBroker = make_broker(amqp_url, middlewares=[ConsumeMetricsMiddleware])
    await b.connect()
    await declare_topology(b, {topology.SMS_SEND_QUEUE: [0.3]})
    yield b
    await b.stop()


async def _purge(broker: RabbitBroker, name: str) -> None:
    queue = await broker.declare_queue(work_queue(name))
    await queue.purge()


async def test_the_monitor_reports_depth_consumers_and_dead_letters(broker: RabbitBroker) -> None:
    await _purge(broker, topology.SMS_SEND_QUEUE)
    publisher = Publisher(broker)
    for i in range(3):
        await publisher.publish(_command(f"depth-{i}"), topology.SEND_SMS)
    dead = topology.dead_letter_queue(topology.SMS_SEND_QUEUE)
    await broker.publish(b"{}", exchange=DEAD_EXCHANGE, routing_key=dead, persist=True)

    monitor = QueueMonitor(broker, [topology.SMS_SEND_QUEUE, "no-such-queue"], [dead], interval=0)
    depths = {d.name: d for d in await monitor.poll()}
    await monitor.stop()

    assert depths[topology.SMS_SEND_QUEUE].messages == 3
    assert depths[topology.SMS_SEND_QUEUE].consumers == 0
    assert depths[dead].messages >= 1
    assert "no-such-queue" not in depths  # a missing queue is skipped, the others still measured
    assert REGISTRY.get_sample_value("postwire_queue_messages",
                                     {"queue": topology.SMS_SEND_QUEUE}) == 3
    assert REGISTRY.get_sample_value("postwire_dead_letter_messages", {"queue": dead}) >= 1


async def test_a_service_watches_its_queues_their_dead_letters_and_its_delay_queues(
    amqp_url: str,
) -> None:
    b: RabbitBroker = make_broker(amqp_url)

    @b.subscriber(work_queue(topology.SMS_SEND_QUEUE))
    async def handle(cmd: SendSms) -> None:
        return None

    monitor = monitor_for(b, {topology.SMS_SEND_QUEUE: [5, 30]}, interval=15)
    assert monitor.watched == [
        topology.SMS_SEND_QUEUE,
        topology.delay_queue(topology.SMS_SEND_QUEUE, 5),
        topology.delay_queue(topology.SMS_SEND_QUEUE, 30),
        topology.dead_letter_queue(topology.SMS_SEND_QUEUE),
    ]


async def test_consumer_lag_is_observed_for_each_delivery(broker: RabbitBroker) -> None:
    await _purge(broker, topology.SMS_SEND_QUEUE)
    labels = {"queue": topology.SMS_SEND_QUEUE}
    before = REGISTRY.get_sample_value("postwire_consumer_lag_seconds_count", labels) or 0.0
    got: asyncio.Queue[SendSms] = asyncio.Queue()

    @broker.subscriber(work_queue(topology.SMS_SEND_QUEUE))
    async def handle(cmd: SendSms) -> None:
        await got.put(cmd)

    await broker.start()
    publisher = Publisher(broker)
    await publisher.publish(_command("lag-1"), topology.SEND_SMS)
    # Retried through the delay queue: its lag counts from the end of the delay, not the publish.
    await publisher.delay(_command("lag-2"), topology.SMS_SEND_QUEUE, 0.3)
    seen = {(await asyncio.wait_for(got.get(), 20)).message_id for _ in range(2)}
    assert seen == {"lag-1", "lag-2"}
    after = REGISTRY.get_sample_value("postwire_consumer_lag_seconds_count", labels) or 0.0
    assert after - before == 2


def test_lag_counts_from_the_publish_or_the_end_of_a_delay() -> None:
    now = datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)
    published = int((now - timedelta(seconds=4)).timestamp() * 1000)
    plain = SimpleNamespace(headers={"x-published-ms": published}, timestamp=None)
    assert waited(plain, now) == pytest.approx(4.0)
    delayed = SimpleNamespace(
        headers={"x-published-ms": published,
                 "x-death": [{"queue": "q.delay.3000ms", "time": now - timedelta(seconds=1)}]},
        timestamp=None)
    assert waited(delayed, now) == pytest.approx(1.0)
    foreign = SimpleNamespace(headers={}, timestamp=now - timedelta(seconds=2))
    assert waited(foreign, now) == pytest.approx(2.0)
    assert waited(SimpleNamespace(headers=None, timestamp=None), now) is None


def _queue_types(vhost_url: str) -> dict[str, str]:
    vhost = vhost_url.rsplit("/", 1)[1]
    out = subprocess.run(["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "type"],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    rows = [line.split() for line in out.splitlines() if line.strip()]
    return {row[0]: row[1] for row in rows if len(row) == 2 and row[0] != "name"}


async def test_quorum_queues_carry_work_dead_letters_and_delays() -> None:
    """``AMQP_QUEUE_TYPE=quorum``: the same topology, replicated queues, delays still work."""
    previous = queue_type()
    with rabbit_vhost() as url:
        set_queue_type("quorum")
        try:
            b: RabbitBroker = make_broker(url)
            got: asyncio.Queue[SendSms] = asyncio.Queue()

            @b.subscriber(work_queue(topology.SMS_SEND_QUEUE))
            async def handle(cmd: SendSms) -> None:
                await got.put(cmd)

            await b.connect()
            await declare_topology(b, {topology.SMS_SEND_QUEUE: [0.3]})
            await b.start()
            try:
                await Publisher(b).delay(_command("quorum-1"), topology.SMS_SEND_QUEUE, 0.3)
                assert (await asyncio.wait_for(got.get(), 20)).message_id == "quorum-1"
            finally:
                await b.stop()
            types = await asyncio.to_thread(_queue_types, url)
        finally:
            set_queue_type(previous)
    assert types[topology.SMS_SEND_QUEUE] == "quorum"
    assert types[topology.dead_letter_queue(topology.SMS_SEND_QUEUE)] == "quorum"
    assert types[topology.delay_queue(topology.SMS_SEND_QUEUE, 0.3)] == "quorum"
