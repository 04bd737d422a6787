"""Pacing: a token bucket per business number and per (number, recipient) pair.

``admit`` looks at both buckets of a send. When tokens are there, or the next one is at most ``max_wait``
away, it takes them (a bucket may go below zero: that is a reservation, so concurrent sends queue up in
order behind each other) and says how long to wait. When the slot is further away it takes nothing and
the dispatcher parks the command in a delay queue instead: a busy number or recipient then holds no
consumer slot (prefetch) that other tenants' messages need. At most ``max_waiting`` sends wait in-process
per number for the same reason.

Buckets live in the process: with several dispatcher replicas, give each a share of Meta's limit.
A throttle answer from Meta (130429, 131056) empties the bucket concerned for a while (``penalise``).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass(frozen=True)
class Rate:
    per_second: float
    burst: int


@dataclass(frozen=True)
class Admission:
    """``wait`` seconds until the send's slot; ``granted`` when the slot was taken (wait in-process)."""

    granted: bool
    wait: float


class Buckets:
    """Token buckets by key, the least recently used forgotten past ``capacity`` (a forgotten bucket
    is a full one, so forgetting only ever errs on the generous side for idle keys)."""

    def __init__(self, rate: Rate, *, capacity: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._capacity = capacity
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _refilled(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(self.rate.burst), now)
            self._buckets[key] = bucket
            while len(self._buckets) > self._capacity:
                self._buckets.popitem(last=False)
        else:
            bucket.tokens = min(float(self.rate.burst),
                                bucket.tokens + (now - bucket.at) * self.rate.per_second)
            bucket.at = now
            self._buckets.move_to_end(key)
        return bucket

    def wait(self, key: str, now: float) -> float:
        """Seconds until a token is free for ``key`` (0 when one is there)."""
        bucket = self._refilled(key, now)
        return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / self.rate.per_second

    def take(self, key: str, now: float) -> None:
        self._refilled(key, now).tokens -= 1

    def penalise(self, key: str, seconds: float, now: float) -> None:
        """No token for ``key`` for the next ``seconds`` (on top of what is already reserved)."""
        bucket = self._refilled(key, now)
        bucket.tokens = min(bucket.tokens, -seconds * self.rate.per_second)


class Pacer:
    """Admits sends by business number and by (number, recipient)."""

    def __init__(self, per_number: Rate, per_recipient: Rate, *, max_wait: float, max_waiting: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._numbers = Buckets(per_number, clock=clock)
        self._pairs = Buckets(per_recipient, clock=clock)
        self._max_wait = max_wait
        self._max_waiting = max_waiting
        self._waiting: dict[str, int] = {}
        self._clock = clock

    def admit(self, number: str, recipient: str) -> Admission:
        """Take the send's slot if it is at most ``max_wait`` away, else say how far away it is."""
        now = self._clock()
        pair = f"{number}:{recipient}"
        wait = max(self._numbers.wait(number, now), self._pairs.wait(pair, now))
        if wait > 0 and (wait > self._max_wait or self._waiting.get(number, 0) >= self._max_waiting):
            return Admission(False, wait)
        self._numbers.take(number, now)
        self._pairs.take(pair, now)
        return Admission(True, wait)

    def waiting(self, number: str, delta: int) -> None:
        """Count sends sleeping in-process for ``number`` (+1 before the sleep, -1 after)."""
        count = self._waiting.get(number, 0) + delta
        if count > 0:
            self._waiting[number] = count
        else:
            self._waiting.pop(number, None)

    def throttle_number(self, number: str, seconds: float) -> None:
        self._numbers.penalise(number, seconds, self._clock())

    def throttle_recipient(self, number: str, recipient: str, seconds: float) -> None:
        self._pairs.penalise(f"{number}:{recipient}", seconds, self._clock())


def delay_step(steps: list[float], wait: float) -> float:
    """The shortest declared delay of at least ``wait`` seconds (the longest when none is)."""
    ordered = sorted(steps)
    return next((s for s in ordered if s >= wait), ordered[-1])
