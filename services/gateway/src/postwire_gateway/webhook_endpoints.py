"""Customer webhook endpoints (scope ``webhooks:write``): create (secret shown once), list, get, update,
delete, rotate the secret.

The signing secret is stored sealed (``SECRET_KEYS``) and appears in two answers only: creation and
rotation. A rotated endpoint signs with the old and the new secret until the overlap ends, so the
customer can deploy the new one without dropping a delivery.

URLs are checked before they are stored (``postwire_platform.webhook_targets``): absolute http(s), https
for live keys (and for live endpoints), and a host that resolves to public addresses only unless
``WEBHOOK_ALLOW_PRIVATE`` (``make run``). webhook-fanout checks the resolved address again at delivery.
An endpoint made with a test key is a test endpoint: it never receives live events.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, patch, post
from litestar.params import FromPath

from postwire_contracts.webhooks import EVENT_TYPES
from postwire_platform import webhook_store
from postwire_platform.errors import ApiError, unavailable
from postwire_platform.mongo import WEBHOOK_ENDPOINTS, Document
from postwire_platform.webhook_targets import UnresolvableHost, UnsafeTarget, check_url

from .availability import mongo_guard
from .context import Gateway, gateway_of
from .decoding import decode_body
from .paging import paged
from .views import iso

SCOPE = "webhooks:write"
TAGS = ["Webhooks"]
MAX_OVERLAP_SECONDS = 7 * 86400
RESOLVE_TIMEOUT = 5.0

Url = Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
Events = list[Annotated[str, msgspec.Meta(min_length=1)]]
Description = Annotated[str, msgspec.Meta(max_length=500)]


class CreateWebhookEndpoint(msgspec.Struct, rename="camel", kw_only=True, frozen=True):
    """``POST /v1/webhook-endpoints``."""

    url: Url
    events: Events = msgspec.field(default_factory=lambda: ["*"])
    description: Description = ""
    enabled: bool = True


class UpdateWebhookEndpoint(msgspec.Struct, rename="camel", kw_only=True, frozen=True):
    """``PATCH /v1/webhook-endpoints/{id}``: only the fields given change."""

    url: Url | None = None
    events: Events | None = None
    description: Description | None = None
    enabled: bool | None = None


class RotateSecret(msgspec.Struct, rename="camel", kw_only=True, frozen=True):
    """``POST /v1/webhook-endpoints/{id}/rotate-secret``."""

    overlap_seconds: Annotated[int, msgspec.Meta(ge=0, le=MAX_OVERLAP_SECONDS)] | None = None


def endpoint_view(doc: Document) -> dict[str, Any]:
    """An endpoint as the API shows it (never with its secret)."""
    previous = [p["expires_at"] for p in doc.get("previous_secrets") or []]
    return {
        "id": doc["_id"],
        "url": doc["url"],
        "events": list(doc.get("events") or ["*"]),
        "description": doc.get("description") or "",
        "enabled": bool(doc.get("enabled", True)),
        "mode": doc.get("mode") or "live",
        "disabledReason": None if doc.get("enabled", True) else doc.get("disabled_reason"),
        "createdAt": iso(doc.get("created_at")),
        "updatedAt": iso(doc.get("updated_at")),
        "secretRotatedAt": iso(doc.get("rotated_at")),
        "previousSecretExpiresAt": iso(max(previous)) if previous else None,
    }


@post("/v1/webhook-endpoints", status_code=201, summary="Create a webhook endpoint", tags=TAGS,
      opt={"body": CreateWebhookEndpoint})
async def create_webhook_endpoint(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Register an endpoint; its signing secret is in this answer and never again."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, SCOPE)
    body = decode_body(await request.body(), CreateWebhookEndpoint)
    events = check_events(body.events)
    await check_target(gateway, body.url, require_https=principal.live)
    async with mongo_guard("creating a webhook endpoint"):
        secret, doc = await webhook_store.create_endpoint(
            gateway.runtime.db, gateway.keyring, principal.tenant_id, body.url, events=events,
            description=body.description, enabled=body.enabled,
            mode="live" if principal.live else "test")
    return Response({"success": True, "data": {**endpoint_view(doc), "secret": secret}},
                    status_code=201)


@get("/v1/webhook-endpoints", summary="List webhook endpoints", tags=TAGS, opt={"page": True})
async def list_webhook_endpoints(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The tenant's endpoints, newest first, without their secrets."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, SCOPE)
    return await paged(gateway.runtime.db[WEBHOOK_ENDPOINTS], {"tenant_id": principal.tenant_id},
                       request.query_params, endpoint_view,
                       projection={"secret": False, "previous_secrets.secret": False})


@get("/v1/webhook-endpoints/{endpoint_id:str}", summary="Get a webhook endpoint", tags=TAGS,
     opt={"page": False})
async def get_webhook_endpoint(request: Request[Any, Any, Any],
                               endpoint_id: FromPath[str]) -> dict[str, Any]:
    """One of the tenant's endpoints; another tenant's or an unknown id is 404."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, SCOPE)
    return {"success": True, "data": endpoint_view(await find_endpoint(gateway, principal.tenant_id,
                                                                       endpoint_id))}


@patch("/v1/webhook-endpoints/{endpoint_id:str}", summary="Update a webhook endpoint", tags=TAGS,
       opt={"body": UpdateWebhookEndpoint})
async def update_webhook_endpoint(request: Request[Any, Any, Any],
                                  endpoint_id: FromPath[str]) -> dict[str, Any]:
    """Change the URL, event filter, description or enabled flag; enabling again clears the reason it
    was disabled (a 410 from the endpoint)."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, SCOPE)
    body = decode_body(await request.body(), UpdateWebhookEndpoint)
    current = await find_endpoint(gateway, principal.tenant_id, endpoint_id)
    changes: Document = {"updated_at": gateway.clock()}
    if body.events is not None:
        changes["events"] = check_events(body.events)
    if body.url is not None:
        live = principal.live or (current.get("mode") or "live") == "live"
        await check_target(gateway, body.url, require_https=live)
        changes["url"] = body.url
    if body.description is not None:
        changes["description"] = body.description
    update: Document = {"$set": changes}
    if body.enabled is not None:
        changes["enabled"] = body.enabled
        if body.enabled:
            update["$unset"] = {"disabled_reason": "", "disabled_at": ""}
    async with mongo_guard("updating a webhook endpoint"):
        result = await gateway.runtime.db[WEBHOOK_ENDPOINTS].update_one(
            {"_id": endpoint_id, "tenant_id": principal.tenant_id}, update)
    if result.matched_count == 0:
        raise _not_found(endpoint_id)
    return {"success": True, "data": endpoint_view(await find_endpoint(gateway, principal.tenant_id,
                                                                       endpoint_id))}


@delete("/v1/webhook-endpoints/{endpoint_id:str}", status_code=204,
        summary="Delete a webhook endpoint", tags=TAGS)
async def delete_webhook_endpoint(request: Request[Any, Any, Any],
                                  endpoint_id: FromPath[str]) -> None:
    """Delete one of the tenant's endpoints; another tenant's or an unknown id is 404."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, SCOPE)
    async with mongo_guard("deleting a webhook endpoint"):
        result = await gateway.runtime.db[WEBHOOK_ENDPOINTS].delete_one(
            {"_id": endpoint_id, "tenant_id": principal.tenant_id})
    if result.deleted_count == 0:
        raise _not_found(endpoint_id)


@post("/v1/webhook-endpoints/{endpoint_id:str}/rotate-secret", status_code=200,
      summary="Rotate a webhook endpoint's signing secret", tags=TAGS, opt={"body": RotateSecret})
async def rotate_webhook_secret(request: Request[Any, Any, Any],
                                endpoint_id: FromPath[str]) -> dict[str, Any]:
    """A new secret, shown once; the old one keeps signing for ``overlapSeconds`` (default
    ``WEBHOOK_SECRET_OVERLAP_SECONDS``), every delivery meanwhile carrying both signatures."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, SCOPE)
    raw = await request.body()
    body = decode_body(raw, RotateSecret) if raw.strip() else RotateSecret()
    seconds = body.overlap_seconds
    if seconds is None:
        seconds = gateway.settings.webhook_secret_overlap_seconds
    async with mongo_guard("rotating a webhook secret"):
        rotated = await webhook_store.rotate_secret(
            gateway.runtime.db, gateway.keyring, principal.tenant_id, endpoint_id,
            overlap=timedelta(seconds=seconds))
    if rotated is None:
        raise _not_found(endpoint_id)
    secret, doc = rotated
    return {"success": True, "data": {**endpoint_view(doc), "secret": secret}}


async def find_endpoint(gateway: Gateway, tenant_id: str, endpoint_id: str) -> Document:
    """The tenant's endpoint (without secrets), or 404."""
    async with mongo_guard("reading a webhook endpoint"):
        doc = await gateway.runtime.db[WEBHOOK_ENDPOINTS].find_one(
            {"_id": endpoint_id, "tenant_id": tenant_id},
            projection={"secret": False, "previous_secrets.secret": False})
    if doc is None:
        raise _not_found(endpoint_id)
    return doc


def check_events(events: list[str]) -> list[str]:
    """The event filter as stored (``["*"]`` or sorted types), or 422."""
    if not events:
        raise ApiError(422, "validation_error", "events must name at least one event type or '*'",
                       field="events")
    unknown = sorted(set(events) - set(EVENT_TYPES) - {"*"})
    if unknown:
        raise ApiError(422, "validation_error",
                       f"unknown event type(s): {', '.join(unknown)}", field="events")
    return ["*"] if "*" in events else sorted(set(events))


async def check_target(gateway: Gateway, url: str, *, require_https: bool) -> None:
    """422 for a URL that may not receive webhooks; 503 when its host cannot be resolved now."""
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            await check_url(url, require_https=require_https,
                            allow_private=gateway.settings.webhook_allow_private)
    except TimeoutError:
        raise unavailable("DNS resolution") from None
    except UnresolvableHost as exc:
        if exc.temporary:
            raise unavailable("DNS resolution") from None
        raise ApiError(422, "validation_error", f"url: {exc}", field="url") from None
    except UnsafeTarget as exc:
        raise ApiError(422, "validation_error", f"url: {exc}", field="url") from None


def _not_found(endpoint_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no webhook endpoint with id {endpoint_id!r}")


WEBHOOK_ENDPOINT_ROUTES = [create_webhook_endpoint, list_webhook_endpoints, get_webhook_endpoint,
                           update_webhook_endpoint, delete_webhook_endpoint, rotate_webhook_secret]
