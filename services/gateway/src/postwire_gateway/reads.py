"""Message reads for every channel (scope ``read:<channel>``): list with filters, one, timeline."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

from litestar import Request, get
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from pymongo import DESCENDING

from postwire_contracts.status import Status
from postwire_platform.errors import ApiError
from postwire_platform.mongo import MESSAGES, Document

from .availability import mongo_guard
from .channels import ChannelSpec
from .context import Gateway, gateway_of
from .decoding import choice_param, int_param
from .views import pagination, timeline_view

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
MAX_QUERY_CHARS = 200
STATUSES: tuple[str, ...] = tuple(s.value for s in Status)


def read_routes(spec: ChannelSpec) -> list[HTTPRouteHandler]:
    """The list, get and timeline routes of ``spec``'s channel."""

    async def list_messages(request: Request[Any, Any, Any]) -> dict[str, Any]:
        gateway = gateway_of(request)
        principal = await gateway.auth.authenticate(request, spec.read_scope)
        query = request.query_params
        page = int_param(query, "page", default=1, minimum=1)
        page_size = int_param(query, "pageSize", default=DEFAULT_PAGE_SIZE, minimum=1,
                              maximum=MAX_PAGE_SIZE)
        criteria = list_criteria(spec, principal.tenant_id, query)
        messages = gateway.runtime.db[MESSAGES]
        async with mongo_guard("listing messages"):
            cursor = (messages.find(criteria, projection={"timeline": False, "command": False})
                      .sort([("accepted_at", DESCENDING), ("_id", DESCENDING)])
                      .skip((page - 1) * page_size).limit(page_size))
            docs, total = await asyncio.gather(cursor.to_list(), messages.count_documents(criteria))
        return {"data": [spec.view(d) for d in docs],
                "pagination": pagination(page, page_size, total)}

    async def get_message(request: Request[Any, Any, Any], message_id: FromPath[str]) -> dict[str, Any]:
        gateway = gateway_of(request)
        principal = await gateway.auth.authenticate(request, spec.read_scope)
        doc = await _find(gateway, spec, principal.tenant_id, message_id,
                          projection={"timeline": False, "command": False})
        return {"success": True, "data": spec.view(doc)}

    async def get_timeline(request: Request[Any, Any, Any], message_id: FromPath[str]) -> dict[str, Any]:
        gateway = gateway_of(request)
        principal = await gateway.auth.authenticate(request, spec.read_scope)
        doc = await _find(gateway, spec, principal.tenant_id, message_id, projection={"timeline": True})
        return {"success": True, "data": timeline_view(doc.get("timeline") or [])}

    name = spec.channel.value
    list_messages.__name__ = f"list_{name}"
    get_message.__name__ = f"get_{name}"
    get_timeline.__name__ = f"get_{name}_timeline"
    list_messages.__doc__ = (f"The tenant's {spec.noun} messages, newest first; filters ``status``, "
                             "``query`` (recipient, body, external id), ``dateFrom``/``dateTo`` (ISO 8601)"
                             + ", ".join(f", ``{p}``" for p, _, _ in spec.filters) + "; paged.")
    get_message.__doc__ = f"One {spec.noun}, if it belongs to the caller's tenant; else 404."
    get_timeline.__doc__ = (f"Every recorded event of one {spec.noun}, oldest first (events arrive late "
                            "and out of order).")
    return [
        get(f"/v1/{spec.path}", summary=f"List {spec.noun} messages", tags=[spec.noun],
            opt={"page": True, "query": list_query(spec)})(list_messages),
        get(f"/v1/{spec.path}/{{message_id:str}}", summary=f"One {spec.noun}",
            tags=[spec.noun])(get_message),
        get(f"/v1/{spec.path}/{{message_id:str}}/timeline", summary=f"The timeline of one {spec.noun}",
            tags=[spec.noun])(get_timeline),
    ]


def list_query(spec: ChannelSpec) -> dict[str, dict[str, Any]]:
    """The list's query parameters, for the OpenAPI document."""
    date = {"type": "string", "format": "date-time"}
    query: dict[str, dict[str, Any]] = {
        "status": {"type": "string", "enum": list(STATUSES)},
        "query": {"type": "string", "maxLength": MAX_QUERY_CHARS},
        "dateFrom": date, "dateTo": date}
    for param, choices, _ in spec.filters:
        query[param] = {"type": "string", "enum": list(choices)}
    return query


def list_criteria(spec: ChannelSpec, tenant_id: str, query: Any) -> Document:
    """The MongoDB filter of a list request; 422 naming a bad parameter."""
    criteria: Document = {"tenant_id": tenant_id, "channel": spec.channel.value}
    status = choice_param(query, "status", STATUSES)
    if status is not None:
        criteria["status"] = status
    for param, choices, field in spec.filters:
        value = choice_param(query, param, choices)
        if value is not None:
            criteria[field] = value
    text = query.get("query")
    if text:
        text = str(text)
        if len(text) > MAX_QUERY_CHARS:
            raise ApiError(422, "validation_error", f"query must be at most {MAX_QUERY_CHARS} characters",
                           field="query")
        pattern = {"$regex": re.escape(text), "$options": "i"}
        criteria["$or"] = [{field: pattern} for field in spec.search_fields]
    since, until = _date_param(query, "dateFrom"), _date_param(query, "dateTo")
    if since is not None or until is not None:
        if since is not None and until is not None and since > until:
            raise ApiError(422, "validation_error", "dateFrom must not be after dateTo", field="dateFrom")
        bounds: Document = {}
        if since is not None:
            bounds["$gte"] = since
        if until is not None:
            bounds["$lte"] = until
        criteria["accepted_at"] = bounds
    return criteria


def _date_param(query: Any, name: str) -> datetime | None:
    raw = query.get(name)
    if not raw:
        return None
    text = str(raw)
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise ApiError(422, "validation_error",
                       f"{name} must be an ISO 8601 date or time, e.g. 2026-11-21T12:00:00Z",
                       field=name) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def _find(gateway: Gateway, spec: ChannelSpec, tenant_id: str, message_id: str, *,
                projection: dict[str, bool]) -> Document:
    async with mongo_guard("reading a message"):
        doc = await gateway.runtime.db[MESSAGES].find_one(
            {"_id": message_id, "tenant_id": tenant_id, "channel": spec.channel.value},
            projection=projection)
    if doc is None:
        raise ApiError(404, "not_found", f"no {spec.noun} with id {message_id!r}")
    return doc
