"""Stored documents as the HTTP API shows them (camelCase, ISO-8601 UTC times)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from postwire_contracts.status import Status
from postwire_platform.mongo import Document

_RANK: dict[str, int] = {
    Status.QUEUED.value: 0,
    Status.PROCESSING.value: 1,
    Status.SENT.value: 2,
    Status.DELIVERED.value: 3,
    Status.FAILED.value: 3,
    Status.READ.value: 4,
}


def iso(value: datetime | None) -> str | None:
    """``2026-11-21T12:00:00.123Z``, or None."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def timeline_view(entries: list[Document]) -> list[dict[str, Any]]:
    """Timeline entries by ``occurred_at``; ties keep the status machine's order, then arrival."""
    ordered = sorted(entries, key=lambda e: (_sort_time(e.get("occurred_at")),
                                             _RANK.get(e.get("status", ""), 5)))
    return [
        {
            "status": e.get("status"),
            "eventType": e.get("event_type"),
            "occurredAt": iso(e.get("occurred_at")),
            "recordedAt": iso(e.get("recorded_at")),
            "source": e.get("source"),
            "providerMessageId": e.get("provider_message_id"),
            "providerStatus": e.get("provider_status"),
            "errorCode": e.get("error_code"),
            "errorReason": e.get("error_reason"),
            "detail": e.get("detail") or {},
            "raw": e.get("raw"),
        }
        for e in ordered
    ]


def pagination(page: int, page_size: int, total: int) -> dict[str, Any]:
    """The SPEC's ``pagination`` object."""
    return {"page": page, "pageSize": page_size, "total": total,
            "totalPages": math.ceil(total / page_size) if total else 0,
            "hasNext": page * page_size < total}


def _sort_time(value: datetime | None) -> datetime:
    if value is None:
        return datetime.max.replace(tzinfo=UTC)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
