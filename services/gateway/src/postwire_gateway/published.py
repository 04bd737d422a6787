"""Marks published messages ``published: true``, late and in batches, where reporting has not already.

The first status event reporting writes to a message (its PROCESSING, mostly) sets ``published: true``
in the same document update, since an event means the command was published and consumed. So the
gateway waits ``delay`` seconds before its own mark and writes only the messages still ``published:
false``: when the pipeline keeps up that matches nothing and modifies no document, which on the
MongoDB-wire server saves about one document update per message (docs/performance.md, change 12).

A mark that never lands is harmless: the outbox relay publishes the message again after its grace period
(longer than ``delay``), and every consumer is idempotent on the message id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable

from prometheus_client import Counter

from postwire_platform.mongo import MESSAGES
from postwire_platform.service import Runtime

log = logging.getLogger(__name__)

MARKED = Counter("postwire_gateway_published_marks",
                 "Messages the gateway marked published itself: no status event had been recorded "
                 "for them within the delay (reporting lagging, or the outbox's work)")


class PublishedMarker:
    """Collects published message ids; every ``interval`` seconds marks those added ``delay`` seconds
    ago or earlier, ``batch_size`` ids per update."""

    def __init__(self, runtime: Runtime, *, delay: float = 2.0, interval: float = 0.1,
                 batch_size: int = 200, max_pending: int = 50_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._runtime = runtime
        self._delay = delay
        self._interval = interval
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._clock = clock
        self._pending: deque[tuple[float, str]] = deque()  # (due, message id), in order of due
        self._task: asyncio.Task[None] | None = None
        self.marked = 0
        """Messages this marker found still unmarked when due, and marked."""

    def add(self, message_id: str) -> None:
        """Queue ``message_id`` to be marked published once ``delay`` has passed."""
        if len(self._pending) >= self._max_pending:
            return  # MongoDB has been down a long time: leave the rest to the outbox
        self._pending.append((self._clock() + self._delay, message_id))

    async def start(self) -> None:
        """Start the background flusher."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="gateway-published-marker")

    async def stop(self) -> None:
        """Stop the flusher and mark what is left without waiting (stopping at the first failure)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while await self.flush(due_only=False):
            pass

    async def flush(self, *, due_only: bool = True) -> int:
        """Mark up to one batch of the due ids (of any pending ids with ``due_only=False``) now, where
        nothing has yet; returns how many ids were handled (0 on failure, when they stay queued)."""
        now = self._clock()
        batch: list[str] = []
        pending = self._pending
        while pending and len(batch) < self._batch_size and (not due_only or pending[0][0] <= now):
            batch.append(pending.popleft()[1])
        if not batch:
            return 0
        try:
            result = await self._runtime.db[MESSAGES].update_many(
                {"_id": {"$in": batch}, "published": False}, {"$set": {"published": True}})
        except Exception:  # keep them for the next round; the outbox covers a long outage
            log.warning("could not mark %d messages published; will retry", len(batch),
                        exc_info=True)
            pending.extendleft((now, message_id) for message_id in reversed(batch))
            return 0
        self.marked += result.matched_count
        MARKED.inc(result.matched_count)
        return len(batch)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            while await self.flush() == self._batch_size:
                pass
