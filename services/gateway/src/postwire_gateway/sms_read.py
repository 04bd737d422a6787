"""SMS reads (scope ``read:sms``): one message, its timeline, and the filtered, paged list."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, get
from litestar.params import FromPath
from pymongo import DESCENDING

from postwire_contracts.status import Channel, Status
from postwire_platform.errors import ApiError
from postwire_platform.mongo import MESSAGES, Document

from .availability import mongo_guard
from .context import Gateway, gateway_of
from .decoding import choice_param, int_param
from .views import pagination, sms_view, timeline_view

SCOPE = "read:sms"
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
FLOWS: tuple[str, ...] = ("OTP", "STANDARD")


@get("/v1/sms/{message_id:str}", summary="One SMS")
async def get_sms(request: Request[Any, Any, Any],
                  message_id: FromPath[str]) -> dict[str, Any]:
    """The message, if it belongs to the caller's tenant; else 404."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, SCOPE)
    doc = await _find(gateway, principal.tenant_id, message_id, projection={"timeline": False})
    return {"success": True, "data": sms_view(doc)}


@get("/v1/sms/{message_id:str}/timeline", summary="The events of one SMS")
async def get_sms_timeline(request: Request[Any, Any, Any],
                           message_id: FromPath[str]) -> dict[str, Any]:
    """Every recorded event of the message, oldest first (events arrive out of order)."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, SCOPE)
    doc = await _find(gateway, principal.tenant_id, message_id, projection={"timeline": True})
    return {"success": True, "data": timeline_view(doc.get("timeline") or [])}


@get("/v1/sms", summary="List SMS")
async def list_sms(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The tenant's SMS, newest first, filtered by ``status`` and ``flow``, paged."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, SCOPE)
    query = request.query_params
    status = choice_param(query, "status", STATUSES)
    flow = choice_param(query, "flow", FLOWS)
    page = int_param(query, "page", default=1, minimum=1)
    page_size = int_param(query, "pageSize", default=DEFAULT_PAGE_SIZE, minimum=1,
                          maximum=MAX_PAGE_SIZE)
    criteria: Document = {"tenant_id": principal.tenant_id, "channel": Channel.SMS.value}
    if status is not None:
        criteria["status"] = status
    if flow is not None:
        criteria["flow"] = flow
    messages = gateway.runtime.db[MESSAGES]
    async with mongo_guard("listing messages"):
        cursor = (messages.find(criteria, projection={"timeline": False})
                  .sort([("accepted_at", DESCENDING), ("_id", DESCENDING)])
                  .skip((page - 1) * page_size).limit(page_size))
        docs, total = await asyncio.gather(cursor.to_list(), messages.count_documents(criteria))
    return {"data": [sms_view(d) for d in docs], "pagination": pagination(page, page_size, total)}


async def _find(gateway: Gateway, tenant_id: str, message_id: str, *,
                projection: dict[str, bool]) -> Document:
    async with mongo_guard("reading a message"):
        doc = await gateway.runtime.db[MESSAGES].find_one(
            {"_id": message_id, "tenant_id": tenant_id, "channel": Channel.SMS.value},
            projection=projection)
    if doc is None:
        raise ApiError(404, "not_found", f"no SMS with id {message_id!r}")
    return doc
