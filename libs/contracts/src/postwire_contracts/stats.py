"""Stats rollups: what reporting counts per tenant, channel and day, and how readers interpret it.

Reporting (the writer) and the gateway (the reader of ``GET /v1/stats``) agree on this module: the
rollup document's id, the counters, and the fixed log-spaced latency buckets from which percentiles are
computed at read time. The document shape is described in ``docs/architecture.md`` (``stats_daily``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import date

from .status import Channel, Status

COUNTERS: tuple[str, ...] = ("accepted", "processing", "sent", "delivered", "read", "failed")
"""Messages counted once per status they reach (``accepted`` is QUEUED), in the status machine's order."""

COUNTER_OF: dict[Status, str] = {
    Status.QUEUED: "accepted",
    Status.PROCESSING: "processing",
    Status.SENT: "sent",
    Status.DELIVERED: "delivered",
    Status.READ: "read",
    Status.FAILED: "failed",
}

_CHAIN: tuple[Status, ...] = (Status.QUEUED, Status.PROCESSING, Status.SENT, Status.DELIVERED,
                              Status.READ)


def reached_with(status: Status) -> frozenset[Status]:
    """The statuses a message has necessarily reached once it is in ``status``.

    A delivery receipt that overtakes the SENT event still means the message was sent; a failure says
    nothing about the statuses between QUEUED and it.
    """
    if status is Status.FAILED:
        return frozenset({Status.QUEUED, Status.FAILED})
    return frozenset(_CHAIN[: _CHAIN.index(status) + 1])


LATENCIES: dict[str, str] = {"sent": "acceptToSent", "delivered": "acceptToDelivered"}
"""Latency histograms kept (the milestone counter whose time is measured from acceptance) and their
names on the HTTP API."""

BUCKETS_PER_DECADE = 10
"""Bucket ``i`` (1..``LAST_BUCKET``) holds samples in (10**((i-1)/10), 10**(i/10)] ms: about ±12 %."""
LAST_BUCKET = 66
"""The last bounded bucket ends at 10**6.6 ms (about 66 minutes); bucket 0 holds samples ≤ 1 ms and
``LAST_BUCKET + 1`` everything slower than the last bound."""
OVERFLOW_BUCKET = LAST_BUCKET + 1


def rollup_id(tenant_id: str, channel: Channel | str, day: date, live: bool) -> str:
    """``<tenant>:<channel>:<YYYY-MM-DD>:<live|test>``."""
    return f"{tenant_id}:{Channel(channel).value}:{day.isoformat()}:{'live' if live else 'test'}"


def bucket_of(millis: float) -> int:
    """The histogram bucket of a latency in milliseconds (negative clock skew counts as 0 ms)."""
    if millis <= 1.0:
        return 0
    index = math.ceil(math.log10(millis) * BUCKETS_PER_DECADE - 1e-9)
    return min(max(index, 1), OVERFLOW_BUCKET)


def bucket_key(index: int) -> str:
    """The field name of bucket ``index`` inside a histogram sub-document (``b0`` … ``b67``)."""
    return f"b{index}"


def histogram(doc: Mapping[str, object] | None) -> dict[int, int]:
    """A stored histogram sub-document as ``{bucket index: count}``; unknown keys are ignored."""
    out: dict[int, int] = {}
    for key, value in (doc or {}).items():
        if key.startswith("b") and key[1:].isdigit() and isinstance(value, int) and value > 0:
            out[int(key[1:])] = value
    return out


def merge(histograms: Iterable[Mapping[int, int]]) -> dict[int, int]:
    """The sum of several histograms."""
    out: dict[int, int] = {}
    for hist in histograms:
        for index, count in hist.items():
            out[index] = out.get(index, 0) + count
    return out


def _lower(index: int) -> float:
    return 0.0 if index == 0 else 10 ** ((index - 1) / BUCKETS_PER_DECADE)


def _upper(index: int) -> float:
    return 10 ** (index / BUCKETS_PER_DECADE)


def percentile(hist: Mapping[int, int], q: float) -> float | None:
    """The ``q`` quantile (0 < q ≤ 1) in ms, interpolated inside its bucket; None without samples.

    Inside a bucket the position is interpolated geometrically (linearly in the first, which starts at
    0); a quantile in the overflow bucket is reported as the last bound, a lower limit.
    """
    total = sum(count for count in hist.values() if count > 0)
    if total == 0:
        return None
    rank = max(q * total, 1e-12)
    seen = 0
    for index in sorted(hist):
        count = hist[index]
        if count <= 0:
            continue
        if seen + count >= rank:
            if index >= OVERFLOW_BUCKET:
                return round(_upper(LAST_BUCKET), 1)
            fraction = (rank - seen) / count
            low, high = _lower(index), _upper(index)
            value = low + (high - low) * fraction if index == 0 else low * (high / low) ** fraction
            return round(value, 1)
        seen += count
    return round(_upper(LAST_BUCKET), 1)  # unreachable: rank <= total
