"""Storing and publishing accepted messages, for every channel and for single and batch sends.

The order is the foundation's (docs/architecture.md): insert the QUEUED document, publish the command
with confirms, mark it published in batches. What is new here is the group commit: concurrent requests'
documents go to MongoDB in one ``insert_many`` (a flush starts as soon as the previous one ends, so an idle
gateway adds no delay and a busy one makes fewer round trips), and a batch send is one such insert.

Failure handling per message: the insert fails → 503, nothing published; the publish is refused → the
document is deleted again and 503 (if even that delete fails, the outbox relay publishes it later). Every
document carries the command it publishes (``command``), so the outbox relay needs no channel knowledge.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import pymongo
from pymongo.errors import AutoReconnect, BulkWriteError, PyMongoError, ServerSelectionTimeoutError

from postwire_contracts.messages import SendCommand
from postwire_platform import telemetry
from postwire_platform.broker import BrokerUnavailable, broker_connected
from postwire_platform.errors import ApiError, unavailable
from postwire_platform.metrics import message_accepted
from postwire_platform.mongo import MESSAGES, Document
from postwire_platform.service import Runtime

from .published import PublishedMarker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    """A validated message: its document (with ``command``) and where its command goes."""

    doc: Document
    command: SendCommand
    routing_key: str

    @property
    def message_id(self) -> str:
        return str(self.doc["_id"])


def with_command(doc: Document, command: SendCommand) -> Document:
    """``doc`` carrying the command it publishes (for the outbox relay)."""
    doc["command"] = msgspec.to_builtins(command)
    return doc


class GroupInserter:
    """Coalesces concurrent ``insert`` calls into ``insert_many`` round trips."""

    def __init__(self, runtime: Runtime, *, max_batch: int = 1000) -> None:
        self._runtime = runtime
        self._max_batch = max_batch
        self._pending: list[tuple[list[Document], asyncio.Future[list[BaseException | None]]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def insert(self, docs: list[Document]) -> list[BaseException | None]:
        """Insert ``docs``; returns, per document, None when stored or the error that refused it."""
        future: asyncio.Future[list[BaseException | None]] = asyncio.get_running_loop().create_future()
        self._pending.append((docs, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="gateway-group-insert")
        return await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                group: list[tuple[list[Document], asyncio.Future[list[BaseException | None]]]] = []
                size = 0
                while self._pending and (not group or size + len(self._pending[0][0]) <= self._max_batch):
                    item = self._pending.pop(0)
                    group.append(item)
                    size += len(item[0])
                docs = [d for waiting, _ in group for d in waiting]
                outcomes = await self._insert_many(docs)
                start = 0
                for waiting, future in group:
                    if not future.done():
                        future.set_result(outcomes[start:start + len(waiting)])
                    start += len(waiting)
        finally:
            self._flusher = None

    async def _insert_many(self, docs: list[Document]) -> list[BaseException | None]:
        outcomes: list[BaseException | None] = [None] * len(docs)
        try:
            await self._runtime.db[MESSAGES].insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            for error in exc.details.get("writeErrors", []):
                outcomes[error["index"]] = PyMongoError(error.get("errmsg", "write error"))
        except PyMongoError as exc:
            outcomes = [exc] * len(docs)
        except Exception as exc:
            log.exception("group insert failed unexpectedly")
            outcomes = [exc] * len(docs)
        return outcomes


class Acceptor:
    """Stores and publishes prepared messages."""

    def __init__(self, runtime: Runtime, marker: PublishedMarker) -> None:
        self._runtime = runtime
        self._marker = marker
        self._inserter = GroupInserter(runtime)
        self._otp_inserter = GroupInserter(runtime)
        """OTPs are stored in group inserts of their own, beside the bulk ones rather than after
        the one in flight."""

    def require_broker(self) -> None:
        """503 before anything is written when RabbitMQ is known to be down."""
        if self._runtime.publisher is None or not broker_connected(self._runtime.broker):
            raise unavailable("RabbitMQ")

    async def accept_one(self, prepared: Prepared) -> None:
        """Store and publish one message, or raise its 503."""
        (outcome,) = await self.accept_many([prepared])
        if outcome is not None:
            raise outcome

    async def accept_many(self, batch: Sequence[Prepared]) -> list[ApiError | None]:
        """Store and publish ``batch``; per message None when accepted or the 503 that refused it."""
        self.require_broker()
        otp = all(getattr(p.command, "flow", None) == "OTP" for p in batch)
        inserter = self._otp_inserter if otp else self._inserter
        stored = await inserter.insert([p.doc for p in batch])
        results: list[ApiError | None] = [None] * len(batch)
        to_publish: list[int] = []
        for i, error in enumerate(stored):
            if error is None:
                to_publish.append(i)
                continue
            log.warning("storing message %s failed: %r", batch[i].message_id, error)
            if isinstance(error, AutoReconnect) and not isinstance(error, ServerSelectionTimeoutError):
                await self._take_back(batch[i].message_id, "insert outcome unknown")
            results[i] = unavailable("MongoDB")
        published = await asyncio.gather(*(self._publish(batch[i]) for i in to_publish))
        for i, ok in zip(to_publish, published, strict=True):
            if ok:
                self._marker.add(batch[i].message_id)
                message_accepted(batch[i].doc["channel"], batch[i].doc["tenant_id"])
            else:
                await self._take_back(batch[i].message_id, "publish refused")
                results[i] = unavailable("RabbitMQ")
        return results

    async def _publish(self, prepared: Prepared) -> bool:
        publisher = self._runtime.publisher
        if publisher is None:
            return False
        try:
            await publisher.publish(prepared.command, prepared.routing_key,
                                    message_id=prepared.message_id)
        except BrokerUnavailable as exc:
            log.warning("publishing message %s failed: %s", prepared.message_id, exc)
            return False
        return True

    async def _take_back(self, message_id: str, reason: str) -> None:
        """Best-effort compensation; a document left behind is published by the outbox relay."""
        try:
            with pymongo.timeout(2.0):
                await self._runtime.db[MESSAGES].delete_one({"_id": message_id, "published": False})
        except PyMongoError:
            log.error("could not delete message %s after %s; the outbox relay will publish it",
                      message_id, reason, exc_info=True)


def base_document(*, message_id: str, tenant_id: str, live: bool, channel: str, to: Any,
                  metadata: dict[str, str], external_id: str | None, accepted_at: Any) -> Document:
    """The fields every channel's ``messages`` document has (docs/architecture.md), QUEUED."""
    return {
        "_id": message_id,
        "tenant_id": tenant_id,
        "channel": channel,
        "live": live,
        "status": "QUEUED",
        "to": to,
        "metadata": dict(metadata),
        "external_id": external_id,
        "accepted_at": accepted_at,
        "updated_at": accepted_at,
        "sent_at": None,
        "delivered_at": None,
        "failed_at": None,
        "provider_message_id": None,
        "error_code": None,
        "error_reason": None,
        "published": False,
        "trace": telemetry.traceparent(),
        "timeline": [queued_entry(message_id, accepted_at)],
    }


def queued_entry(message_id: str, accepted_at: Any) -> Document:
    """The timeline entry recording the gateway's acceptance."""
    return {
        "event_id": f"{message_id}:queued",
        "status": "QUEUED",
        "occurred_at": accepted_at,
        "recorded_at": accepted_at,
        "source": "gateway",
        "provider_message_id": None,
        "provider_status": None,
        "error_code": None,
        "error_reason": None,
        "detail": {},
        "raw": None,
    }
