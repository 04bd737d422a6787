"""Customer webhook endpoints (scope ``webhooks:write``): create (secret shown once), list, delete."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.params import FromPath

from postwire_platform import tenancy
from postwire_platform.errors import ApiError
from postwire_platform.mongo import WEBHOOK_ENDPOINTS, Document

from .availability import mongo_guard
from .context import gateway_of
from .decoding import decode_body, int_param
from .views import iso, pagination

SCOPE = "webhooks:write"

EVENT_TYPES: frozenset[str] = frozenset({
    "email_sent", "email_delivered", "email_opened", "email_soft_bounce", "email_hard_bounce",
    "email_spam_complaint", "email_failed", "sms_sent", "sms_delivered", "sms_failed",
    "sms_opt_out", "sms_opt_in", "whatsapp_sent", "whatsapp_delivered", "whatsapp_read",
    "whatsapp_failed", "whatsapp_inbound",
})
"""The customer webhook event types of the SPEC; ``*`` subscribes to all of them."""


class CreateWebhookEndpoint(msgspec.Struct, rename="camel", kw_only=True, frozen=True):
    """``POST /v1/webhook-endpoints``."""

    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
    events: list[Annotated[str, msgspec.Meta(min_length=1)]] = msgspec.field(
        default_factory=lambda: ["*"])
    description: Annotated[str, msgspec.Meta(max_length=500)] = ""
    enabled: bool = True


@post("/v1/webhook-endpoints", status_code=201, summary="Create a webhook endpoint")
async def create_webhook_endpoint(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Register an endpoint; its signing secret is in this answer and never again."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, SCOPE)
    body = decode_body(await request.body(), CreateWebhookEndpoint)
    _check_url(body.url)
    events = _check_events(body.events)
    async with mongo_guard("creating a webhook endpoint"):
        secret, doc = await tenancy.create_webhook_endpoint(
            gateway.runtime.db, principal.tenant_id, body.url, events=events,
            description=body.description, enabled=body.enabled)
    return Response({"success": True, "data": {**endpoint_view(doc), "secret": secret}},
                    status_code=201)


@get("/v1/webhook-endpoints", summary="List webhook endpoints")
async def list_webhook_endpoints(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The tenant's endpoints, newest first, without their secrets."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, SCOPE)
    page = int_param(request.query_params, "page", default=1, minimum=1)
    page_size = int_param(request.query_params, "pageSize", default=20, minimum=1, maximum=100)
    criteria = {"tenant_id": principal.tenant_id}
    endpoints = gateway.runtime.db[WEBHOOK_ENDPOINTS]
    async with mongo_guard("listing webhook endpoints"):
        cursor = (endpoints.find(criteria, projection={"secret": False})
                  .sort([("created_at", -1), ("_id", -1)])
                  .skip((page - 1) * page_size).limit(page_size))
        docs, total = await asyncio.gather(cursor.to_list(), endpoints.count_documents(criteria))
    return {"data": [endpoint_view(d) for d in docs],
            "pagination": pagination(page, page_size, total)}


@delete("/v1/webhook-endpoints/{endpoint_id:str}", status_code=204,
        summary="Delete a webhook endpoint")
async def delete_webhook_endpoint(request: Request[Any, Any, Any],
                                  endpoint_id: FromPath[str]) -> None:
    """Delete one of the tenant's endpoints; another tenant's or an unknown id is 404."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, SCOPE)
    async with mongo_guard("deleting a webhook endpoint"):
        result = await gateway.runtime.db[WEBHOOK_ENDPOINTS].delete_one(
            {"_id": endpoint_id, "tenant_id": principal.tenant_id})
    if result.deleted_count == 0:
        raise ApiError(404, "not_found", f"no webhook endpoint with id {endpoint_id!r}")


def endpoint_view(doc: Document) -> dict[str, Any]:
    """An endpoint as the API shows it (never with its secret)."""
    return {
        "id": doc["_id"],
        "url": doc["url"],
        "events": list(doc.get("events") or ["*"]),
        "description": doc.get("description") or "",
        "enabled": bool(doc.get("enabled", True)),
        "createdAt": iso(doc.get("created_at")),
    }


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise ApiError(422, "validation_error", "url must be an absolute http(s) URL", field="url")


def _check_events(events: list[str]) -> list[str]:
    if not events:
        raise ApiError(422, "validation_error", "events must name at least one event type or '*'",
                       field="events")
    unknown = sorted(set(events) - EVENT_TYPES - {"*"})
    if unknown:
        raise ApiError(422, "validation_error",
                       f"unknown event type(s): {', '.join(unknown)}", field="events")
    return ["*"] if "*" in events else sorted(set(events))
