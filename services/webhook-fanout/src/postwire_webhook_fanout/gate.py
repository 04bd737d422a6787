"""Isolation between endpoints: a concurrency limit and a circuit breaker per endpoint, per replica.

When the endpoint already has ``limit`` attempts in flight the job is set aside (``busy``) through a
short delay queue, with one exception: an endpoint that is merely busy, not slow (its last attempt was
answered, without failure, faster than ``wait``), is waited for in memory (``acquire``: at most
``waiters`` jobs, each for at most ``wait`` seconds, first come first served: a freed slot is handed to
the longest waiter, not left to whichever job asks next), which spares a busy healthy endpoint a
defer-queue round per job. While the endpoint's breaker is open its attempts are skipped (``open``)
and follow the retry schedule. So a slow or dead endpoint holds at most ``limit`` of the consumer's
slots for at most the timeout, and after ``threshold`` consecutive failures none at all; a fast one
holds at most ``limit + waiters`` for at most ``wait`` longer than its attempts take; every other
endpoint keeps flowing.

The breaker: ``threshold`` consecutive failures (no answer, timeout, 5xx) open it for ``cooldown``
seconds; then one probe is let through (half-open): success closes it, failure opens it again. Any
answer below 500 counts as the endpoint being alive. The state is per process: each replica learns
about an endpoint on its own, which bounds the damage without a shared store on the hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from prometheus_client import Counter, Gauge

Admission = Literal["go", "busy", "open"]

OPENED = Counter("postwire_webhook_breaker_opened", "Times an endpoint's circuit breaker opened")
OPEN = Gauge("postwire_webhook_breakers_open", "Endpoints whose circuit breaker is open")


@dataclass
class _State:
    in_flight: int = 0
    failures: int = 0
    open_until: float | None = None
    probing: bool = False
    last_latency: float | None = None
    """Seconds the last completed attempt took (None: none completed, or it failed)."""

    def answers_within(self, seconds: float) -> bool:
        """The last attempt was answered, without failure, in less than ``seconds``."""
        return not self.failures and self.last_latency is not None and self.last_latency < seconds

    @property
    def idle(self) -> bool:
        return self.in_flight == 0 and self.failures == 0 and self.open_until is None


class EndpointGate:
    """Admits attempts per endpoint: ``go`` (then ``release``), ``busy`` or ``open``."""

    def __init__(self, *, limit: int, threshold: int, cooldown: float, waiters: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._max_waiters = limit if waiters is None else waiters
        self._threshold = threshold
        self._cooldown = cooldown
        self._clock = clock
        self._states: dict[str, _State] = {}
        self._waiters: dict[str, deque[asyncio.Future[bool]]] = {}
        """Jobs waiting for a busy endpoint, first come first served: a freed slot is handed to the
        first (True), so a job arriving meanwhile cannot take it; False: ask again (breaker opened)."""

    async def acquire(self, endpoint_id: str, *, force: bool = False,
                      wait: float = 0.0) -> Admission:
        """``admit``, but a ``busy`` endpoint is waited for up to ``wait`` seconds (unless
        ``waiters`` jobs already wait for it)."""
        admission = self.admit(endpoint_id, force=force)
        if admission != "busy" or wait <= 0:
            return admission
        state = self._states.get(endpoint_id)
        if state is None or not state.answers_within(wait):
            return admission  # slow, failing or unknown: no consumer slot waits for it
        waiters = self._waiters.setdefault(endpoint_id, deque())
        if len(waiters) >= self._max_waiters:
            return "busy"
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        waiters.append(future)
        try:
            async with asyncio.timeout(wait):  # not wait_for: 3.11's keeps a result over a cancel
                await future
        except TimeoutError:
            pass  # a slot handed over as the wait ran out is still this job's
        except BaseException:
            self._forget(endpoint_id, waiters, future)
            if _handed(future):  # cancelled after a slot was handed over: the next waiter's
                self._give_back(endpoint_id)
            raise
        self._forget(endpoint_id, waiters, future)
        if _handed(future):
            return "go"
        return self.admit(endpoint_id, force=force)  # the wait ran out, or the breaker opened

    def _forget(self, endpoint_id: str, waiters: deque[asyncio.Future[bool]],
                future: asyncio.Future[bool]) -> None:
        with contextlib.suppress(ValueError):
            waiters.remove(future)
        if not waiters:
            self._waiters.pop(endpoint_id, None)

    def _give_back(self, endpoint_id: str) -> None:
        state = self._states.setdefault(endpoint_id, _State())
        state.in_flight = max(0, state.in_flight - 1)
        self._hand_over(endpoint_id, state)

    def _hand_over(self, endpoint_id: str, state: _State) -> None:
        """A slot is free: the longest waiter gets it (or, the breaker open, is told to ask again)."""
        for waiter in self._waiters.get(endpoint_id, ()):
            if waiter.done():
                continue
            if state.open_until is None and state.in_flight < self._limit:
                state.in_flight += 1
                waiter.set_result(True)
            else:
                waiter.set_result(False)
            return

    def admit(self, endpoint_id: str, *, force: bool = False) -> Admission:
        """May an attempt to ``endpoint_id`` start now? ``force`` ignores an open breaker (the
        delivery's last attempt is always made), never the concurrency limit."""
        state = self._states.setdefault(endpoint_id, _State())
        if state.in_flight >= self._limit:
            return "busy"
        if state.open_until is not None and not force:
            if self._clock() < state.open_until or state.probing:
                return "open"
            state.probing = True  # half-open: this attempt is the probe
        state.in_flight += 1
        return "go"

    def release(self, endpoint_id: str, *, failed: bool, latency: float | None = None) -> None:
        """An admitted attempt ended after ``latency`` seconds; ``failed``: no answer, a timeout or
        a 5xx."""
        state = self._states.setdefault(endpoint_id, _State())
        state.in_flight = max(0, state.in_flight - 1)
        state.last_latency = None if failed else latency
        was_open = state.open_until is not None
        if failed:
            state.failures += 1
            if state.probing or state.failures >= self._threshold:
                if not was_open:
                    OPENED.inc()
                    OPEN.inc()
                state.open_until = self._clock() + self._cooldown
            state.probing = False
        else:
            state.failures = 0
            state.probing = False
            if was_open:
                OPEN.dec()
            state.open_until = None
        self._hand_over(endpoint_id, state)
        if state.idle and state.last_latency is None:  # kept otherwise: one small entry per endpoint
            del self._states[endpoint_id]

    def is_quick(self, endpoint_id: str, within: float) -> bool:
        """Whether ``endpoint_id`` has a free slot, a closed breaker, and answered its last attempt,
        without failure, in less than ``within`` seconds (an endpoint not attempted yet is not)."""
        state = self._states.get(endpoint_id)
        return (state is not None and state.in_flight < self._limit and state.open_until is None
                and state.answers_within(within))

    def is_open(self, endpoint_id: str) -> bool:
        state = self._states.get(endpoint_id)
        return state is not None and state.open_until is not None


def _handed(future: asyncio.Future[bool]) -> bool:
    return future.done() and not future.cancelled() and future.result()
