"""What the three channels' send, batch and read operations share (each channel names its own fields)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar

from .._core import Call, body, data_list_of, data_of, new_idempotency_key, page_of, query, segment
from ..models import BatchResult, Page, TimelineEntry
from ..params import Params

M = TypeVar("M")

MessageStatus = Literal["QUEUED", "PROCESSING", "SENT", "DELIVERED", "READ", "FAILED"]
MAX_BATCH = 1000


def send_call(path: str, model: type[M], params: Params, *, idempotency_key: str | None,
              extra_body: Mapping[str, Any] | None) -> Call[M]:
    """``POST /v1/{path}/send`` with an idempotency key (the caller's, or a fresh one for this call)."""
    return Call("POST", f"/v1/{path}/send", data_of(model), content=body(params, extra_body),
                idempotency_key=idempotency_key or new_idempotency_key())


def batch_call(path: str, model: type[M], items: Sequence[Params | Mapping[str, Any]], *,
               idempotency_key: str | None) -> Call[BatchResult[M]]:
    """``POST /v1/{path}/batch``: up to 1,000 items, each accepted or refused on its own."""
    if not items:
        raise ValueError("a batch needs at least one message")
    if len(items) > MAX_BATCH:
        raise ValueError(f"a batch holds at most {MAX_BATCH} messages; split it")
    return Call("POST", f"/v1/{path}/batch",
                data_of(BatchResult[model]),  # type: ignore[valid-type]
                content=body({"messages": list(items)}),
                idempotency_key=idempotency_key or new_idempotency_key())


def list_call(path: str, model: type[M], *, status: MessageStatus | None, query_text: str | None,
              date_from: datetime | str | None, date_to: datetime | str | None, page: int | None,
              page_size: int | None, **filters: str | None) -> Call[Page[M]]:
    """``GET /v1/{path}`` with the SPEC's filters, newest first."""
    params = query(status=status, query=query_text, dateFrom=date_from, dateTo=date_to, page=page,
                   pageSize=page_size, **filters)
    return Call("GET", f"/v1/{path}", page_of(model), params=params)


def get_call(path: str, model: type[M], message_id: str) -> Call[M]:
    return Call("GET", f"/v1/{path}/{segment(message_id)}", data_of(model))


def timeline_call(path: str, message_id: str) -> Call[list[TimelineEntry]]:
    return Call("GET", f"/v1/{path}/{segment(message_id)}/timeline", data_list_of(TimelineEntry))
