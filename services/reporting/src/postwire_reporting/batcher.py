"""A micro-batcher: concurrent callers hand in one item each and wait for their batch to be written.

aiormq runs each delivery's handler as its own task (up to the prefetch count), so the handler enqueues
its event and awaits a future; one flusher task takes up to ``max_items`` (or whatever arrived within
``max_wait`` seconds of the first) and processes them together. A failure reaches every caller of the
batch; a non-transient failure of a batch of several is retried item by item, so one poisonous item
fails alone instead of blocking its neighbours forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


class BatcherStopped(RuntimeError):
    """The batcher stopped before the item was processed; the caller should hand it back."""


class MicroBatcher(Generic[T]):
    """Collects items from concurrent callers and processes them in batches, one batch at a time."""

    def __init__(
        self,
        process: Callable[[list[T]], Awaitable[None]],
        *,
        max_items: int,
        max_wait: float,
        is_transient: Callable[[BaseException], bool],
    ) -> None:
        self._process = process
        self._max_items = max(1, max_items)
        self._max_wait = max(0.0, max_wait)
        self._is_transient = is_transient
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[None]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the flusher task on the running loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="micro-batcher")

    async def stop(self, timeout: float = 10.0) -> None:
        """Finish what is queued (bounded by ``timeout``), then stop; leftovers fail BatcherStopped."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not self._queue.empty():
                    await asyncio.sleep(0.01)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(BatcherStopped("reporting is stopping"))

    async def submit(self, item: T) -> None:
        """Queue ``item`` and wait until its batch is processed; raises what the batch raised."""
        if self._task is None or self._task.done():
            raise BatcherStopped("the batcher is not running")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        await future

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            await self._flush(batch)

    async def _collect(self) -> list[tuple[T, asyncio.Future[None]]]:
        loop = asyncio.get_running_loop()
        batch = [await self._queue.get()]
        deadline = loop.time() + self._max_wait
        while len(batch) < self._max_items:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _flush(self, batch: list[tuple[T, asyncio.Future[None]]]) -> None:
        try:
            await self._process([item for item, _ in batch])
        except asyncio.CancelledError:
            _fail(batch, BatcherStopped("reporting is stopping"))
            raise
        except Exception as exc:
            if self._is_transient(exc) or len(batch) == 1:
                log.warning("batch failed", extra={"size": len(batch), "error": repr(exc)})
                _fail(batch, exc)
                return
            log.error("batch failed; retrying its items one by one",
                      extra={"size": len(batch), "error": repr(exc)})
            for single in batch:
                await self._flush([single])
            return
        for _, future in batch:
            if not future.done():
                future.set_result(None)


def _fail(batch: list[tuple[T, asyncio.Future[None]]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
