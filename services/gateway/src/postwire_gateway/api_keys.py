"""``/v1/api-keys`` (scope ``keys:write``): create (the key shown once), list (prefix only), revoke.

A key can only be given scopes its creator holds, so a ``keys:write`` key cannot mint an ``admin`` key or
widen its own powers; only an ``admin`` key may set a key's own rate limit. A revoked key stops working at
once on the replica that revoked it and within ``AUTH_CACHE_SECONDS`` on the others.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.params import FromPath

from postwire_platform import tenancy
from postwire_platform.errors import ApiError
from postwire_platform.mongo import API_KEYS, Document

from .availability import mongo_guard
from .context import gateway_of
from .decoding import decode_body
from .paging import paged
from .views import iso

SCOPE = "keys:write"
TAGS = ["API keys"]


class RateLimitBody(msgspec.Struct, rename="camel", kw_only=True, frozen=True):
    per_minute: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)]
    per_second: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]


class CreateApiKey(msgspec.Struct, rename="camel", kw_only=True, frozen=True):
    """``POST /v1/api-keys``."""

    scopes: Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=40)]],
                      msgspec.Meta(min_length=1, max_length=len(tenancy.SCOPES))]
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    mode: Literal["live", "test"] = "test"
    rate_limit: RateLimitBody | None = None


def key_view(doc: Document) -> dict[str, Any]:
    limit = doc.get("rate_limit")
    return {
        "id": doc["_id"], "prefix": doc.get("prefix"), "name": doc.get("name", ""),
        "scopes": doc.get("scopes", []), "mode": doc.get("mode"),
        "createdAt": iso(doc.get("created_at")), "revokedAt": iso(doc.get("revoked_at")),
        "rateLimit": ({"perMinute": limit["per_minute"], "perSecond": limit["per_second"]}
                      if limit else None),
    }


@post("/v1/api-keys", status_code=201, summary="Create an API key", tags=TAGS,
      opt={"body": CreateApiKey})
async def create_api_key(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Create a key of the caller's tenant; the key itself is in this answer and never again."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, SCOPE)
    body = decode_body(await request.body(), CreateApiKey)
    unknown = sorted(set(body.scopes) - set(tenancy.SCOPES))
    if unknown:
        raise ApiError(422, "validation_error", f"unknown scope(s): {', '.join(unknown)}",
                       field="scopes")
    beyond = sorted(set(body.scopes) - principal.scopes)
    if beyond:
        raise ApiError(403, "forbidden",
                       f"a key cannot grant scopes its creator lacks: {', '.join(beyond)}")
    if body.rate_limit is not None and "admin" not in principal.scopes:
        raise ApiError(403, "forbidden", "only an admin key may set a key's rate limit")
    if body.mode == "live" and not principal.live and "admin" not in principal.scopes:
        raise ApiError(403, "forbidden", "a test key cannot create live keys")
    limit = (body.rate_limit.per_minute, body.rate_limit.per_second) if body.rate_limit else None
    async with mongo_guard("creating an API key"):
        key, doc = await tenancy.create_key(gateway.runtime.db, principal.tenant_id, list(body.scopes),
                                            mode=body.mode, name=body.name, rate_limit=limit)
    return Response({"success": True, "data": {**key_view(doc), "key": key}}, status_code=201)


@get("/v1/api-keys", summary="List API keys", tags=TAGS,
     opt={"page": True, "query": {"revoked": {"type": "string", "enum": ["true", "false"]}}})
async def list_api_keys(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The tenant's keys, newest first, revoked ones included (``?revoked=false`` hides them); only
    their prefixes, never the keys."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, SCOPE)
    criteria: Document = {"tenant_id": principal.tenant_id}
    if request.query_params.get("revoked") == "false":
        criteria["revoked_at"] = None
    return await paged(gateway.runtime.db[API_KEYS], criteria, request.query_params, key_view,
                       projection={"hash": False})


@delete("/v1/api-keys/{key_id:str}", status_code=204, summary="Revoke an API key", tags=TAGS)
async def revoke_api_key(request: Request[Any, Any, Any], key_id: FromPath[str]) -> None:
    """Revoke a key of the caller's tenant (404 for any other id; revoking twice is fine)."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, SCOPE)
    keys = gateway.runtime.db[API_KEYS]
    async with mongo_guard("revoking an API key"):
        doc = await keys.find_one_and_update(
            {"_id": key_id, "tenant_id": principal.tenant_id, "revoked_at": None},
            {"$set": {"revoked_at": gateway.clock()}}, projection={"hash": True})
        if doc is None:
            doc = await keys.find_one({"_id": key_id, "tenant_id": principal.tenant_id},
                                      projection={"hash": True})
    if doc is None:
        raise ApiError(404, "not_found", f"no API key with id {key_id!r}")
    gateway.auth.forget(doc["hash"])


API_KEY_ROUTES = [create_api_key, list_api_keys, revoke_api_key]
