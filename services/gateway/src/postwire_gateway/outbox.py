"""The outbox relay: publishes messages (any channel) that were stored but never marked published.

That happens when a gateway died between its insert and its publish, or when even the compensating
delete failed. Every ``interval`` seconds the relay takes up to ``batch`` messages still ``published:
false`` whose ``accepted_at`` is older than ``grace`` seconds, publishes the command stored with each
(``command``) with confirms and marks them published. A message published twice is harmless: the
dispatcher claims by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import msgspec

from postwire_contracts import topology
from postwire_contracts.messages import SendCommand, SendEmail, SendSms, SendWhatsApp
from postwire_platform.broker import BrokerUnavailable, broker_connected
from postwire_platform.clock import Clock
from postwire_platform.mongo import MESSAGES
from postwire_platform.service import Runtime

log = logging.getLogger(__name__)


class OutboxRelay:
    """A background task re-publishing unpublished messages; it logs errors and never dies of them."""

    def __init__(self, runtime: Runtime, *, clock: Clock, grace: float, interval: float,
                 batch: int = 500) -> None:
        self._runtime = runtime
        self._clock = clock
        self._grace = timedelta(seconds=grace)
        self._interval = interval
        self._batch = batch
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start relaying in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="gateway-outbox-relay")

    async def stop(self) -> None:
        """Stop relaying (a round in progress is cancelled; it is safe to repeat later)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_once(self) -> int:
        """One round: publish what is overdue; returns how many messages were published."""
        runtime = self._runtime
        if runtime.publisher is None or not broker_connected(runtime.broker):
            return 0
        cutoff = self._clock() - self._grace
        messages = runtime.db[MESSAGES]
        cursor = messages.find(
            {"published": False, "accepted_at": {"$lt": cutoff}},
        ).sort("accepted_at", 1).limit(self._batch)
        published: list[str] = []
        try:
            async for doc in cursor:
                try:
                    command = send_command(doc)
                except msgspec.ValidationError:
                    log.exception("outbox: message %s cannot be rebuilt; skipped", doc.get("_id"))
                    continue
                await runtime.publisher.publish(command, routing_key(command), message_id=doc["_id"])
                published.append(doc["_id"])
        except BrokerUnavailable as exc:
            log.warning("outbox: RabbitMQ refused a publish (%s); retrying next round", exc)
        finally:
            await cursor.close()
            if published:
                await messages.update_many({"_id": {"$in": published}},
                                           {"$set": {"published": True}})
                log.info("outbox: published %d overdue messages", len(published))
        return len(published)

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # the relay must outlive any failure; next round retries
                log.exception("outbox round failed; retrying in %.1fs", self._interval)
            await asyncio.sleep(self._interval)


def send_command(doc: Mapping[str, Any]) -> SendCommand:
    """The command stored with a message document.

    Raises ``msgspec.ValidationError`` when it is missing, damaged or not this message's, so a damaged
    document is never published.
    """
    command: SendCommand = msgspec.convert(doc.get("command"), SendCommand)
    if command.message_id != doc.get("_id"):
        raise msgspec.ValidationError("the stored command belongs to another message")
    return command


def routing_key(command: SendCommand) -> str:
    if isinstance(command, SendSms):
        return topology.sms_send_key(command.flow)
    if isinstance(command, SendEmail):
        return topology.SEND_EMAIL
    assert isinstance(command, SendWhatsApp)
    return topology.SEND_WHATSAPP
