"""``postwire dlq list|replay`` against the real RabbitMQ: real dead letters, back to their work queue."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aio_pika
from faststream.rabbit import RabbitBroker

from postwire_cli import dlq
from postwire_cli.__main__ import parser
from postwire_contracts import topology
from postwire_contracts.messages import SendSms
from postwire_platform.broker import BINDINGS, Publisher, declare_topology, make_broker
from postwire_platform.clock import utcnow

QUEUE = topology.SMS_SEND_QUEUE
DEAD = topology.dead_letter_queue(QUEUE)


def postwire(amqp_url: str, *args: str) -> dict[str, Any]:
    """The command line itself, as an operator runs it."""
    exe = Path(sys.executable).with_name("postwire")
    out = subprocess.run([str(exe), "dlq", *args, "--amqp-url", amqp_url], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


async def dlq_(amqp_url: str, *args: str) -> dict[str, Any]:
    """The same command, parsed by the same parser, run in this process (faster)."""
    parsed = parser().parse_args(["dlq", *args, "--amqp-url", amqp_url])
    return dict(json.loads(json.dumps(await dlq.run(parsed))))


async def _dead_letter(amqp_url: str, ids: list[str]) -> None:
    """Publish SendSms commands and reject them the way a consumer does: into ``<queue>.dead``."""
    broker: RabbitBroker = make_broker(amqp_url)
    await broker.connect()
    await declare_topology(broker)
    publisher = Publisher(broker)
    for mid in ids:
        await publisher.publish(SendSms(message_id=mid, tenant_id="ten_dlq", live=False,
                                        to="+447700900123", body="secret body", sender_id="Postwire",
                                        accepted_at=utcnow()), topology.SEND_SMS, message_id=mid)
    await broker.stop()
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(QUEUE, passive=True)
        for _ in ids:
            message = await queue.get(no_ack=False, timeout=10)
            assert message is not None
            await message.reject(requeue=False)


async def _drain(amqp_url: str, name: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    connection = await aio_pika.connect(amqp_url)
    got = []
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            got.append(message)
    return got


async def test_list_shows_dead_letters_without_removing_them_and_without_bodies(
        amqp_url: str) -> None:
    await _dead_letter(amqp_url, ["m-list-1", "m-list-2"])
    sizes = await asyncio.to_thread(postwire, amqp_url, "list")
    assert sizes["dead_letter_queues"][DEAD] == 2
    # every work queue the platform declares has its dead-letter queue listed
    assert set(sizes["dead_letter_queues"]) == {topology.dead_letter_queue(q) for q in BINDINGS}

    peek = await dlq_(amqp_url, "list", QUEUE)
    assert peek["messages"] == 2
    first = peek["shown"][0]
    assert (first["message_id"], first["kind"], first["tenant_id"]) == (
        "m-list-1", "send.sms.v1", "ten_dlq")
    assert (first["reason"], first["from_queue"]) == ("rejected", QUEUE)
    assert "body" not in first and "secret body" not in json.dumps(peek)
    with_body = await dlq_(amqp_url, "list", DEAD, "--body", "--limit", "1")
    assert "secret body" in with_body["shown"][0]["body"]

    again = await dlq_(amqp_url, "list")
    assert again["dead_letter_queues"][DEAD] == 2  # peeking removed nothing
    await _drain(amqp_url, DEAD)


async def test_replay_moves_chosen_messages_back_to_the_work_queue(amqp_url: str) -> None:
    await _drain(amqp_url, QUEUE)
    await _dead_letter(amqp_url, ["m-replay-1", "m-replay-2", "m-replay-3"])

    one = await asyncio.to_thread(postwire, amqp_url, "replay", QUEUE, "--message-id", "m-replay-2")
    assert (one["replayed"], one["message_ids"]) == (1, ["m-replay-2"])
    back = await _drain(amqp_url, QUEUE)
    assert [m.message_id for m in back] == ["m-replay-2"]
    replayed = back[0]
    assert json.loads(replayed.body)["message_id"] == "m-replay-2"
    assert "x-death" not in (replayed.headers or {})
    assert replayed.headers["x-replayed-from"] == DEAD
    left = await dlq_(amqp_url, "list", QUEUE)
    assert [m["message_id"] for m in left["shown"]] == ["m-replay-1", "m-replay-3"]

    rest = await dlq_(amqp_url, "replay", DEAD)
    assert rest["replayed"] == 2 and rest["left_in_dead_letter_queue"] == 0
    assert sorted(m.message_id or "" for m in await _drain(amqp_url, QUEUE)) == [
        "m-replay-1", "m-replay-3"]
    assert (await dlq_(amqp_url, "list"))["dead_letter_queues"][DEAD] == 0


def test_an_unknown_queue_is_refused_with_the_known_ones(amqp_url: str) -> None:
    exe = Path(sys.executable).with_name("postwire")
    out = subprocess.run([str(exe), "dlq", "replay", "nope", "--amqp-url", amqp_url],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "sms-dispatcher.send" in out.stderr
