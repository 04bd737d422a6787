"""Stats (scope ``stats:read``): ``GET /v1/stats`` and ``GET /v1/emails/stats``.

Read from the ``stats_daily`` rollups that reporting keeps as events arrive (docs/architecture.md), never
by scanning messages: one indexed ``find`` of at most (days × channels × modes) small documents.
Counts are of messages by the UTC day they were accepted; latency percentiles are computed from the
summed histogram buckets of the requested days.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from litestar import Request, get

from postwire_contracts.stats import COUNTERS, LATENCIES, histogram, merge, percentile
from postwire_contracts.status import Channel
from postwire_platform.errors import ApiError
from postwire_platform.mongo import STATS_DAILY, Document

from .availability import mongo_guard
from .context import Gateway, gateway_of
from .decoding import choice_param

SCOPE = "stats:read"
DEFAULT_DAYS = 7
MAX_DAYS = 92
CHANNELS: tuple[str, ...] = tuple(c.value for c in Channel)
MODES: tuple[str, ...] = ("live", "test")
QUANTILES: tuple[tuple[str, float], ...] = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
EMAIL_ENGAGEMENT: dict[str, tuple[str, ...]] = {
    "opens": ("email_opened",),
    "clicks": ("email_clicked",),
    "softBounces": ("email_soft_bounce",),
    "hardBounces": ("email_hard_bounce",),
    "bounces": ("email_soft_bounce", "email_hard_bounce"),
    "complaints": ("email_spam_complaint",),
}
"""The email-only totals of ``/v1/emails/stats``, from the customer event types counted."""


QUERY: dict[str, dict[str, Any]] = {
    "dateFrom": {"type": "string", "format": "date", "description": "first UTC day (default: 6 days "
                 "before dateTo)"},
    "dateTo": {"type": "string", "format": "date", "description": "last UTC day (default: today)"},
    "mode": {"type": "string", "enum": list(MODES), "description": "live or test keys' messages only"},
}


@get("/v1/stats", summary="Counts and latency by channel, status and day", tags=["stats"],
     opt={"page": False, "query": {**QUERY, "channel": {"type": "string", "enum": list(CHANNELS)}}})
async def get_stats(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Messages by channel and day of acceptance: counts per status reached, customer events, and
    accept→sent / accept→delivered latency percentiles in ms. Query: ``dateFrom``, ``dateTo`` (ISO
    dates, default the last 7 days, at most 92), ``channel``, ``mode`` (``live``|``test``)."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, SCOPE)
    query = request.query_params
    first, last = date_window(query, gateway.clock())
    channel = choice_param(query, "channel", CHANNELS)
    mode = choice_param(query, "mode", MODES)
    channels = (channel,) if channel else CHANNELS
    docs = await load_rollups(gateway, principal.tenant_id, first, last, channels, mode)
    return {"success": True, "data": {
        "dateFrom": first.isoformat(), "dateTo": last.isoformat(), "mode": mode or "all",
        "totals": summary(docs),
        "channels": [{"channel": name, **channel_view(docs, name, first, last)} for name in channels],
    }}


@get("/v1/emails/stats", summary="Email counts, engagement and latency by day", tags=["email"],
     opt={"page": False, "query": QUERY})
async def get_email_stats(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """``GET /v1/stats`` for email only, plus opens, clicks, bounces and complaints."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, SCOPE)
    query = request.query_params
    first, last = date_window(query, gateway.clock())
    mode = choice_param(query, "mode", MODES)
    docs = await load_rollups(gateway, principal.tenant_id, first, last, (Channel.EMAIL.value,), mode)
    return {"success": True, "data": {
        "dateFrom": first.isoformat(), "dateTo": last.isoformat(), "mode": mode or "all",
        **channel_view(docs, Channel.EMAIL.value, first, last, engagement=True),
    }}


STATS_ROUTES = [get_stats, get_email_stats]


def date_window(query: Mapping[str, Any], now: datetime) -> tuple[date, date]:
    """``dateFrom``..``dateTo`` (inclusive UTC days); 422 naming the parameter when invalid."""
    last = _day_param(query, "dateTo")
    first = _day_param(query, "dateFrom")
    if last is None:
        last = now.astimezone(UTC).date() if first is None else max(
            first, now.astimezone(UTC).date())
    if first is None:
        try:
            first = last - timedelta(days=DEFAULT_DAYS - 1)
        except OverflowError:
            raise ApiError(422, "validation_error", "dateTo is too early", field="dateTo") from None
    if first > last:
        raise ApiError(422, "validation_error", "dateFrom must not be after dateTo", field="dateFrom")
    if (last - first).days + 1 > MAX_DAYS:
        raise ApiError(422, "validation_error", f"the date range may span at most {MAX_DAYS} days",
                       field="dateFrom")
    return first, last


def _day_param(query: Mapping[str, Any], name: str) -> date | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    text = str(raw)
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).date()
    except (ValueError, OverflowError):
        raise ApiError(422, "validation_error",
                       f"{name} must be an ISO 8601 date, e.g. 2026-11-21", field=name) from None


async def load_rollups(gateway: Gateway, tenant_id: str, first: date, last: date,
                       channels: Iterable[str], mode: str | None) -> list[Document]:
    """The tenant's rollup documents of the window (one indexed ``find``)."""
    criteria: Document = {"tenant_id": tenant_id,
                          "day": {"$gte": first.isoformat(), "$lte": last.isoformat()},
                          "channel": {"$in": list(channels)}}
    if mode is not None:
        criteria["live"] = mode == "live"
    async with mongo_guard("reading stats"):
        return await gateway.runtime.db[STATS_DAILY].find(
            criteria, projection={"_id": False, "updated_at": False}).to_list()


def summary(docs: list[Document], *, engagement: bool = False) -> dict[str, Any]:
    """Counts, customer events and latency percentiles of some rollup documents, summed."""
    counts = dict.fromkeys(COUNTERS, 0)
    events: dict[str, int] = {}
    for doc in docs:
        for name, value in (doc.get("counts") or {}).items():
            if name in counts and isinstance(value, int):
                counts[name] += value
        for name, value in (doc.get("events") or {}).items():
            if isinstance(value, int):
                events[name] = events.get(name, 0) + value
    latency = {}
    for counter, api_name in LATENCIES.items():
        hist = merge(histogram((doc.get("latency") or {}).get(counter)) for doc in docs)
        latency[api_name] = {"samples": sum(hist.values()),
                             **{label: percentile(hist, q) for label, q in QUANTILES}}
    out: dict[str, Any] = {"counts": counts, "events": dict(sorted(events.items())),
                           "latency": latency}
    if engagement:
        out["engagement"] = {name: sum(events.get(t, 0) for t in types)
                             for name, types in EMAIL_ENGAGEMENT.items()}
    return out


def channel_view(docs: list[Document], channel: str, first: date, last: date, *,
                 engagement: bool = False) -> dict[str, Any]:
    """One channel's totals over the window and its days (every day, zeros included), oldest first."""
    mine = [d for d in docs if d.get("channel") == channel]
    by_day: dict[str, list[Document]] = {}
    for doc in mine:
        by_day.setdefault(str(doc.get("day")), []).append(doc)
    days = [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    return {**summary(mine, engagement=engagement),
            "days": [{"date": day, **summary(by_day.get(day, []), engagement=engagement)}
                     for day in days]}
