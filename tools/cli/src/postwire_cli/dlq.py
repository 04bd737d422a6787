"""``postwire dlq``: inspect and replay the dead-letter queues (``<queue>.dead``).

A message lands in its queue's dead-letter queue when a consumer rejects it (it cannot be decoded, or
failed for good). ``list`` shows each dead-letter queue's size, or peeks at one queue's messages
without removing them; ``replay`` moves messages back to their work queue, confirmed by RabbitMQ before
each is removed from the dead-letter queue (a crash in between at worst replays one twice, and every
consumer is idempotent on the message id). Plain AMQP: no management plugin needed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import aio_pika
import msgspec
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from postwire_contracts import topology
from postwire_platform.broker import BINDINGS

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


class _Ids(msgspec.Struct):
    kind: str | None = None
    message_id: str | None = None
    event_id: str | None = None
    tenant_id: str | None = None


_ids = msgspec.json.Decoder(_Ids)


def add_parser(sub: Any) -> None:
    """The ``dlq`` command group."""
    dlq = sub.add_parser("dlq", help="inspect and replay dead-lettered messages").add_subparsers(
        dest="cmd", required=True)
    ls = dlq.add_parser("list", help="sizes of every dead-letter queue, or peek at one")
    ls.add_argument("queue", nargs="?", help="a work queue (e.g. sms-dispatcher.send) or its .dead")
    ls.add_argument("--limit", type=int, default=20, help="messages to show (default 20)")
    ls.add_argument("--body", action="store_true",
                    help="include message bodies (they may hold personal data)")
    rp = dlq.add_parser("replay", help="move dead-lettered messages back to their work queue")
    rp.add_argument("queue", help="a work queue (e.g. sms-dispatcher.send) or its .dead")
    rp.add_argument("--limit", type=int, default=None, help="replay at most this many")
    rp.add_argument("--message-id", action="append", default=[],
                    help="replay only this message id (repeatable)")
    for p in (ls, rp):
        p.add_argument("--amqp-url", help="default: $AMQP_URL, else the local RabbitMQ")


def work_queue_of(name: str) -> str:
    """The work queue ``name`` stands for (``x`` or ``x.dead``); SystemExit for an unknown one."""
    base = name.removesuffix(".dead")
    if base not in BINDINGS:
        raise SystemExit(f"unknown queue {name!r}; one of: {', '.join(sorted(BINDINGS))}")
    return base


@contextlib.asynccontextmanager
async def _channel(args: argparse.Namespace) -> AsyncIterator[AbstractChannel]:
    url = args.amqp_url or os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL
    connection = await aio_pika.connect(url, timeout=10)
    try:
        # A replay to a queue that does not exist must fail, not vanish: returns raise.
        yield await connection.channel(publisher_confirms=True, on_return_raises=True)
    finally:
        await connection.close()


async def _dead(channel: AbstractChannel, queue: str) -> AbstractQueue:
    return await channel.declare_queue(topology.dead_letter_queue(queue), passive=True)


def describe(message: AbstractIncomingMessage, *, body: bool) -> dict[str, Any]:
    """What an operator needs to decide about a dead letter; the body only when asked."""
    try:
        ids = _ids.decode(message.body)
    except msgspec.DecodeError:
        ids = _Ids(kind="undecodable")
    deaths = (message.headers or {}).get("x-death")
    death = deaths[0] if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict) else {}
    when = death.get("time")
    out: dict[str, Any] = {
        "amqp_message_id": message.message_id,
        "kind": ids.kind,
        "message_id": ids.message_id,
        "event_id": ids.event_id,
        "tenant_id": ids.tenant_id,
        "routing_key": message.routing_key,
        "reason": death.get("reason"),
        "from_queue": death.get("queue"),
        "times": death.get("count"),
        "dead_lettered_at": when.isoformat() if isinstance(when, datetime) else None,
        "size": len(message.body),
    }
    if body:
        out["body"] = message.body.decode("utf-8", errors="replace")
    return out


def _matches(message: AbstractIncomingMessage, wanted: set[str]) -> bool:
    if not wanted:
        return True
    if message.message_id in wanted:
        return True
    try:
        ids = _ids.decode(message.body)
    except msgspec.DecodeError:
        return False
    return bool({ids.message_id, ids.event_id} & wanted)


async def list_command(args: argparse.Namespace) -> dict[str, Any]:
    """Sizes of every dead-letter queue, or the first ``--limit`` messages of one (left in place)."""
    async with _channel(args) as channel:
        if args.queue is None:
            sizes = {}
            for queue in BINDINGS:
                dead = await _dead(channel, queue)
                sizes[dead.name] = dead.declaration_result.message_count
            return {"dead_letter_queues": sizes}
        queue = work_queue_of(args.queue)
        dead = await _dead(channel, queue)
        total = dead.declaration_result.message_count or 0
        shown = []
        # Unacknowledged gets: closing the channel puts every peeked message back where it was.
        for _ in range(min(args.limit, total)):
            message = await dead.get(no_ack=False, fail=False)
            if message is None:
                break
            shown.append(describe(message, body=args.body))
        return {"queue": dead.name, "messages": total, "shown": shown}


async def replay_command(args: argparse.Namespace) -> dict[str, Any]:
    """Publish dead letters back to their work queue (confirmed), then remove them."""
    queue = work_queue_of(args.queue)
    wanted = set(args.message_id)
    replayed: list[str | None] = []
    async with _channel(args) as channel:
        dead = await _dead(channel, queue)
        total = dead.declaration_result.message_count or 0
        for _ in range(total):  # each message is looked at once; skipped ones go back at the end
            if args.limit is not None and len(replayed) >= args.limit:
                break
            message = await dead.get(no_ack=False, fail=False)
            if message is None:
                break
            if not _matches(message, wanted):
                continue
            headers = {k: v for k, v in (message.headers or {}).items() if k != "x-death"}
            headers["x-replayed-from"] = dead.name
            await channel.default_exchange.publish(
                aio_pika.Message(message.body, headers=headers, message_id=message.message_id,
                                 content_type=message.content_type,
                                 delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=queue, mandatory=True)
            await message.ack()
            replayed.append(message.message_id)
    return {"queue": queue, "replayed": len(replayed), "message_ids": replayed,
            "left_in_dead_letter_queue": total - len(replayed)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the chosen ``dlq`` command."""
    if args.cmd == "replay":
        return await replay_command(args)
    return await list_command(args)
