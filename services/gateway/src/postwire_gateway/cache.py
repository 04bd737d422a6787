"""A small in-process TTL cache with LRU eviction, for the hot path's repeated lookups."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Keeps up to ``max_entries`` values for ``ttl`` seconds each; the least recently used go first."""

    def __init__(self, ttl: float, *, max_entries: int = 10_000,
                 now: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._now = now
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()

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
        """Forget ``key``."""
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)
