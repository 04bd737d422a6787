"""Marks published messages ``published: true`` in batches instead of one update per request.

A mark that never lands is harmless: the outbox relay publishes the message again after its grace period,
and every consumer is idempotent on the message id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from postwire_platform.mongo import MESSAGES
from postwire_platform.service import Runtime

log = logging.getLogger(__name__)


class PublishedMarker:
    """Collects published message ids; flushes every ``interval`` seconds or ``batch_size`` ids."""

    def __init__(self, runtime: Runtime, *, interval: float = 0.1, batch_size: int = 200,
                 max_pending: int = 50_000) -> None:
        self._runtime = runtime
        self._interval = interval
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._pending: list[str] = []
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def add(self, message_id: str) -> None:
        """Queue ``message_id`` to be marked published."""
        if len(self._pending) >= self._max_pending:
            return  # MongoDB has been down a long time: leave the rest to the outbox
        self._pending.append(message_id)
        if len(self._pending) >= self._batch_size:
            self._full.set()

    async def start(self) -> None:
        """Start the background flusher."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="gateway-published-marker")

    async def stop(self) -> None:
        """Stop the flusher and flush what is left (stopping at the first failure)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while await self.flush():
            pass

    async def flush(self) -> int:
        """Mark up to one batch now; returns how many ids were marked (0 on failure)."""
        batch, self._pending = self._pending[:self._batch_size], self._pending[self._batch_size:]
        if not self._pending:
            self._full.clear()
        if not batch:
            return 0
        try:
            await self._runtime.db[MESSAGES].update_many(
                {"_id": {"$in": batch}}, {"$set": {"published": True}})
        except Exception:  # keep them for the next round; the outbox covers a long outage
            log.warning("could not mark %d messages published; will retry", len(batch),
                        exc_info=True)
            self._pending[:0] = batch
            return 0
        return len(batch)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._full.wait()
            while await self.flush() == self._batch_size:
                pass
            if self._pending:  # a failed flush: do not spin
                await asyncio.sleep(self._interval)
