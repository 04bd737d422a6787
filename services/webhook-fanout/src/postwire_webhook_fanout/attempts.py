"""``webhook_attempts``: every attempt's record, written in batches, and what is read back from it.

A record holds the attempt (time, status code, latency, error, outcome) and the event it carried (the
exact body), so a replay needs nothing else. Records expire (``expires_at``, deleted by ``expire``
every ``WEBHOOK_ATTEMPT_SWEEP_SECONDS``) after the retention. Writes are grouped: concurrent attempts
share one ``insert_many`` (MongoDB here takes thousands of documents per second in batches but only
hundreds one by one), and each attempt's handler
still waits until its own record is written before acknowledging its job. What the order rule asks
(has this message's earlier event had an attempt to this endpoint?) is answered from memory as soon as
the attempt is made, without waiting for its record: a receipt's webhook then follows its "sent" by
the time of one HTTP request, not by a flush window and an insert.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import msgspec
from pymongo.asynchronous.database import AsyncDatabase

from postwire_platform.ids import new_id
from postwire_platform.mongo import WEBHOOK_ATTEMPTS, Document

from .events import WebhookEvent, utc
from .jobs import Trigger

log = logging.getLogger(__name__)

Outcome = Literal["delivered", "failed", "retrying"]


@dataclass(frozen=True)
class Attempt:
    """What one attempt (or a skipped one) came to."""

    at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    outcome: Outcome


def record(event: WebhookEvent, *, endpoint_id: str, webhook_id: str, attempt_no: int,
           trigger: Trigger, run: str, attempt: Attempt, retention: timedelta) -> Document:
    """The ``webhook_attempts`` document of one attempt."""
    return {
        "_id": new_id("wa_"), "endpoint_id": endpoint_id, "tenant_id": event.tenant_id,
        "message_id": event.message_id, "event_id": event.event_id,
        "event_type": event.event_type, "webhook_id": webhook_id, "attempt": attempt_no,
        "trigger": trigger, "run": run, "at": attempt.at, "status_code": attempt.status_code,
        "latency_ms": attempt.latency_ms, "error": attempt.error, "outcome": attempt.outcome,
        "live": event.live, "occurred_at": event.occurred_at,
        "body": bytes(event.body).decode(), "expires_at": attempt.at + retention,
    }


def event_of(doc: Document) -> WebhookEvent:
    """The event an attempt record carried, for a replay (byte-identical body)."""
    return WebhookEvent(event_id=doc["event_id"], event_type=doc["event_type"],
                        tenant_id=doc["tenant_id"], occurred_at=utc(doc["occurred_at"]),
                        body=msgspec.Raw(doc["body"].encode()), live=bool(doc.get("live", True)),
                        message_id=doc.get("message_id"))


class AttemptLog:
    """Writes attempt records with group commit and answers the questions asked of them."""

    def __init__(self, db: AsyncDatabase[Document], *, window: float = 0.02,
                 max_batch: int = 500, remember: int = 50_000) -> None:
        self._collection = db[WEBHOOK_ATTEMPTS]
        self._window = window
        self._max_batch = max_batch
        self._pending: list[tuple[Document, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._remember = remember
        self._attempted: OrderedDict[tuple[str, str, str], set[str]] = OrderedDict()
        """(tenant, message, endpoint) → event types this process made an attempt for."""
        self._waiters: dict[tuple[str, str, str], list[tuple[frozenset[str], asyncio.Future[None]]]] = {}
        """Jobs waiting here for earlier event types of their message to have had an attempt."""

    async def write(self, doc: Document) -> None:
        """Store ``doc`` (batched with concurrent writes); raises what MongoDB raised.

        The attempt it records has been made: jobs waiting for it are woken now, before the write (a
        record that then fails to be written does not undo the attempt, which the order rule is about).
        """
        self._note(doc)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((doc, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        while self._pending:
            await asyncio.sleep(self._window)
            batch, self._pending = self._pending[:self._max_batch], self._pending[self._max_batch:]
            try:
                await self._insert([doc for doc, _ in batch])
            except Exception as exc:  # every waiting writer hears about it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)

    async def _insert(self, docs: list[Document]) -> None:
        await self._collection.insert_many(docs, ordered=False)

    def _note(self, doc: Document) -> None:
        if not doc.get("message_id") or not doc.get("event_type"):
            return
        key = (str(doc.get("tenant_id")), str(doc["message_id"]), str(doc.get("endpoint_id")))
        attempted = self._attempted.setdefault(key, set())
        attempted.add(str(doc["event_type"]))
        self._attempted.move_to_end(key)
        waiting = self._waiters.get(key)
        if waiting:
            for types, future in waiting:
                if types <= attempted and not future.done():
                    future.set_result(None)
        while len(self._attempted) > self._remember:
            self._attempted.popitem(last=False)

    async def wait_attempted(self, event: WebhookEvent, endpoint_id: str, types: Sequence[str],
                             timeout: float) -> bool:
        """Whether attempts of all ``types`` for the event's message and ``endpoint_id`` are made by
        this process within ``timeout`` seconds (at once when they already were). A job whose
        earlier event is being attempted here right now waits for it in memory, instead of a round
        through the defer queue."""
        key = (str(event.tenant_id), str(event.message_id), endpoint_id)
        wanted = frozenset(types)
        if wanted <= self._attempted.get(key, set()):
            return True
        if timeout <= 0:
            return False
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (wanted, future)
        self._waiters.setdefault(key, []).append(entry)
        try:
            await asyncio.wait_for(future, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            waiting = self._waiters.get(key)
            if waiting is not None:
                waiting.remove(entry)
                if not waiting:
                    del self._waiters[key]

    async def expire(self, now: datetime) -> int:
        """Delete the records whose ``expires_at`` has passed, through its index (the retention;
        ``mongo.INDEXES`` says why not with a TTL option). Safe to run from every replica."""
        result = await self._collection.delete_many({"expires_at": {"$lt": now}})
        return result.deleted_count

    async def close(self) -> None:
        """Wait for records still being written."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)

    async def attempted_types(self, event: WebhookEvent, endpoint_id: str,
                              types: Sequence[str]) -> set[str]:
        """Which of ``types`` already had an attempt to ``endpoint_id`` for the event's message.

        Not asked at all when this process made them itself (the usual case: the earlier event's
        attempt ran here moments before). Else asked of the ``(tenant_id, message_id)`` index alone (a
        message has a handful of records) and filtered here: SecantusDB plans a query with more
        fields than an index as a collection scan, which made this per-delivery question cost
        ~100 ms per 5,000 records (docs/performance.md).
        """
        wanted = set(types)
        known = self._attempted.get((str(event.tenant_id), str(event.message_id), endpoint_id), set())
        if wanted <= known:  # this process made them: no need to ask the database
            return wanted
        cursor = self._collection.find(
            {"tenant_id": event.tenant_id, "message_id": event.message_id},
            projection={"event_type": True, "endpoint_id": True, "_id": False})
        return {doc["event_type"] async for doc in cursor
                if doc.get("endpoint_id") == endpoint_id and doc.get("event_type") in wanted}

    async def latest(self, tenant_id: str, endpoint_id: str, webhook_id: str) -> Document | None:
        """The newest attempt record of a delivery."""
        return await self._collection.find_one(
            {"webhook_id": webhook_id, "endpoint_id": endpoint_id, "tenant_id": tenant_id},
            sort=[("at", -1)])

    async def failed_since(self, tenant_id: str, endpoint_id: str, since: datetime, *,
                           batch: int = 200) -> AsyncIterator[Document]:
        """The last record of every delivery to ``endpoint_id`` that ended ``failed`` at or after
        ``since`` and has not been attempted again since (a later replay that succeeded, or one
        still retrying, takes it off the list)."""
        cursor = self._collection.find(
            {"endpoint_id": endpoint_id, "tenant_id": tenant_id, "outcome": "failed",
             "at": {"$gte": since}}, sort=[("at", 1)], batch_size=batch)
        seen: set[str] = set()
        chunk: list[Document] = []
        async for doc in cursor:
            if doc["webhook_id"] in seen:
                continue
            seen.add(doc["webhook_id"])
            chunk.append(doc)
            if len(chunk) >= batch:
                async for still in self._still_failed(endpoint_id, chunk):
                    yield still
                chunk = []
        async for still in self._still_failed(endpoint_id, chunk):
            yield still

    async def _still_failed(self, endpoint_id: str,
                            docs: list[Document]) -> AsyncIterator[Document]:
        if not docs:
            return
        newest: dict[str, Document] = {}
        # by webhook id alone, on its index, and the endpoint checked here: with the endpoint in
        # the filter SecantusDB walks the endpoint's whole history on (endpoint_id, at) instead
        # (2.2 s against 17 ms per 100 deliveries over 15,000 records)
        cursor = self._collection.find(
            {"webhook_id": {"$in": [d["webhook_id"] for d in docs]}}, projection={"body": False})
        async for doc in cursor:
            if doc.get("endpoint_id") != endpoint_id:
                continue
            current = newest.get(doc["webhook_id"])
            if current is None or (utc(doc["at"]), doc["_id"]) > (utc(current["at"]),
                                                                   current["_id"]):
                newest[doc["webhook_id"]] = doc
        for doc in docs:
            if newest.get(doc["webhook_id"], doc)["outcome"] == "failed":
                yield doc
