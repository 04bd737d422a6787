"""When the next attempt happens: the retry schedule, ``Retry-After`` and jitter.

Delays can only be the declared delay queues (a TTL per queue; RabbitMQ here has no delayed-message
plugin), so a ``Retry-After`` is rounded up to the next declared delay (capped at the longest), and
jitter is a per-message TTL that shortens a scheduled delay by up to ``jitter`` of it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

RETRY_AFTER_STATUSES = frozenset({429, 502, 503, 504})
"""Answers whose ``Retry-After`` header is honoured."""


@dataclass(frozen=True)
class Delay:
    """Which delay queue (``queue`` seconds) and how long this message stays (``expiration``)."""

    queue: float
    expiration: float | None = None


def next_delay(delays: Sequence[float], declared: Sequence[float], attempt: int,
               retry_after: float | None, *, jitter: float = 0.0,
               rng: random.Random | None = None) -> Delay | None:
    """The wait before attempt ``attempt + 1``, or None when ``attempt`` was the last one.

    The schedule gives ``delays[attempt - 1]``. A ``Retry-After`` longer than that moves the wait to
    the first declared delay at least as long (the longest one if none is), never shorter than the
    schedule. Jitter applies to scheduled waits only, so a ``Retry-After`` is never undercut.
    """
    if attempt > len(delays):
        return None
    planned = delays[attempt - 1]
    if retry_after is not None and retry_after > planned:
        return Delay(next((d for d in sorted(declared) if d >= retry_after), max(declared)))
    if jitter <= 0:
        return Delay(planned)
    cut = (rng or random).uniform(0, jitter)
    return Delay(planned, expiration=round(planned * (1 - cut), 3))


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    except (TypeError, ValueError):
        return None
