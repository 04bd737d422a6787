"""A small in-process TTL cache with LRU eviction, for the hot path's repeated lookups.

``get_or_load`` puts it in front of a database lookup without the two stampedes a plain TTL cache
has under load: the requests that miss one key at the same moment share one lookup, and a value in
the last part of its life (``refresh_ahead``) is served while a single lookup in the background
renews it, so a busy key never expires under its callers. A value is never served older than ``ttl``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

log = logging.getLogger(__name__)


class TtlCache(Generic[K, V]):
    """Keeps up to ``max_entries`` values for ``ttl`` seconds each; the least recently used go first."""

    def __init__(self, ttl: float, *, max_entries: int = 10_000, refresh_ahead: float = 0.5,
                 now: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._ahead = ttl * refresh_ahead
        self._now = now
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._loading: dict[K, asyncio.Task[V | None]] = {}

    def get(self, key: K) -> V | None:
        """The cached value, or None when absent or expired."""
        item = self._items.get(key)
        if item is None:
            return None
        expires, value = item
        if expires <= self._now():
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        """Cache ``value`` for the configured TTL (a TTL of 0 caches nothing)."""
        if self._ttl <= 0:
            return
        self._items[key] = (self._now() + self._ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    def discard(self, key: K) -> None:
        """Forget ``key``; a lookup of it already under way will not put its answer back."""
        self._items.pop(key, None)
        self._loading.pop(key, None)

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V | None]], *,
                          keep: Callable[[V], bool] = bool) -> V | None:
        """The cached value, else what ``load()`` returns; kept when ``keep(value)`` (by default a
        truthy one: a refusal is asked again next time). A load's error reaches every caller waiting
        for it; a background renewal's error is logged and the value it was renewing stays until its
        expiry."""
        item = self._items.get(key)
        if item is not None:
            expires, value = item
            left = expires - self._now()
            if left > 0:
                self._items.move_to_end(key)
                if left <= self._ahead and key not in self._loading:
                    self._start(key, load, keep).add_done_callback(_log_failure)
                return value
            del self._items[key]
        task = self._loading.get(key) or self._start(key, load, keep)
        return await asyncio.shield(task)  # a caller that goes away does not cancel the others' load

    def _start(self, key: K, load: Callable[[], Awaitable[V | None]],
               keep: Callable[[V], bool]) -> asyncio.Task[V | None]:
        async def run() -> V | None:
            try:
                value = await load()
                if value is not None and keep(value) and self._loading.get(key) is task:
                    self.put(key, value)
                return value
            finally:
                if self._loading.get(key) is task:
                    del self._loading[key]

        task = asyncio.ensure_future(run())
        task.add_done_callback(_retrieve)  # its callers may all have gone away
        self._loading[key] = task
        return task

    def __len__(self) -> int:
        return len(self._items)


def always(_: object) -> bool:
    """``keep`` for a lookup whose every answer is kept, a "none" (an empty value) included."""
    return True


def _retrieve(task: asyncio.Task[object]) -> None:
    if not task.cancelled():
        task.exception()


def _log_failure(task: asyncio.Task[object]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("cache renewal failed; the cached value is used until it expires: %r",
                    task.exception())
