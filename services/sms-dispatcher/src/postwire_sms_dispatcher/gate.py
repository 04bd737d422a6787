"""Admission to one SMPP bind: a window of submits in flight and a throughput limit, OTPs first.

Waiters are served by priority (0 = OTP before 1 = STANDARD), then in arrival order, so an OTP that
arrives behind thousands of waiting bulk parts takes the next free slot. The throughput limit is a
token bucket refilled at ``rate`` per second holding at most a tenth of a second's worth (at least one),
so a bind never bursts far above its contracted rate.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable

OTP, STANDARD = 0, 1


class PriorityGate:
    """``async with gate.slot(priority):`` around each submit."""

    def __init__(self, window: int, rate: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._rate = rate
        self._capacity = max(1.0, (rate or 0) / 10)
        self._tokens = self._capacity
        self._stamp = clock()
        self._clock = clock
        self._inflight = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def inflight(self) -> int:
        return self._inflight

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, f in self._waiters if not f.done())

    def _take_token(self) -> float:
        """0 when a token was taken, else the seconds until one is due."""
        if self._rate is None:
            return 0.0
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate

    def _pump(self) -> None:
        self._timer = None
        while self._waiters and self._inflight < self._window:
            if self._waiters[0][2].done():  # cancelled while waiting
                heapq.heappop(self._waiters)
                continue
            wait = self._take_token()
            if wait > 0:
                self._timer = asyncio.get_running_loop().call_later(wait, self._pump)
                return
            _, _, future = heapq.heappop(self._waiters)
            self._inflight += 1
            future.set_result(None)

    async def acquire(self, priority: int = STANDARD) -> None:
        """Wait for a slot and a token; the caller must ``release()`` after its submit."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._order), future))
        if self._timer is None:
            self._pump()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # granted just as we were cancelled: hand the slot on
            raise

    def release(self) -> None:
        """Give a slot back."""
        self._inflight -= 1
        if self._timer is None:
            self._pump()

    def slot(self, priority: int = STANDARD) -> _Slot:
        """``async with gate.slot(OTP): …``."""
        return _Slot(self, priority)


class _Slot:
    def __init__(self, gate: PriorityGate, priority: int) -> None:
        self._gate = gate
        self._priority = priority

    async def __aenter__(self) -> None:
        await self._gate.acquire(self._priority)

    async def __aexit__(self, *exc: object) -> None:
        self._gate.release()
