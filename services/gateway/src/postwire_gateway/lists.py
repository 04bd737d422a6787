"""SMS opt-outs (``/v1/sms/opt-outs``) and email suppressions (``/v1/suppressions``): list, add, remove.

Both live in shared collections (docs/architecture.md): the dispatchers refuse a send to a listed address
(FAILED ``opted_out`` / ``suppressed``) without calling a provider; inbound STOP and bounces add to them.
Reads need ``read:sms`` / ``read:email``; changes need ``send:sms`` / ``send:email``. Removing is
``DELETE`` with the address as a query parameter (``?phone=`` / ``?email=``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, delete, get, post
from pymongo.errors import DuplicateKeyError

from postwire_platform.errors import ApiError
from postwire_platform.ids import new_id
from postwire_platform.mongo import OPT_OUTS, SUPPRESSIONS, Document

from .availability import mongo_guard
from .context import gateway_of
from .decoding import choice_param, decode_body
from .email_channel import normalise_address
from .paging import paged
from .phones import normalise_phone
from .views import iso

SUPPRESSION_REASONS = ("hard_bounce", "spam_complaint", "manual", "unsubscribe")


class OptOutBody(msgspec.Struct, rename="camel", kw_only=True, frozen=True):
    phone: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]


class SuppressionBody(msgspec.Struct, rename="camel", kw_only=True, frozen=True):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=320)]
    reason: Literal["manual", "unsubscribe"] = "manual"


def opt_out_view(doc: Document) -> dict[str, Any]:
    return {"phone": doc["address"], "source": doc.get("source"), "keyword": doc.get("keyword"),
            "createdAt": iso(doc.get("created_at"))}


def suppression_view(doc: Document) -> dict[str, Any]:
    return {"email": doc["email"], "reason": doc.get("reason"), "source": doc.get("source"),
            "messageId": doc.get("message_id"), "createdAt": iso(doc.get("created_at"))}


def _query_value(request: Request[Any, Any, Any], name: str) -> str:
    value = request.query_params.get(name)
    if not value:
        raise ApiError(422, "validation_error", f"the {name} query parameter is required", field=name)
    return str(value)


@get("/v1/sms/opt-outs", summary="List SMS opt-outs", tags=["SMS opt-outs"],
     opt={"page": True, "query": {"phone": {"type": "string"}}})
async def list_opt_outs(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The tenant's opted-out handsets, newest first (``?phone=`` looks one up)."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, "read:sms")
    criteria: Document = {"tenant_id": principal.tenant_id, "channel": "sms"}
    if request.query_params.get("phone"):
        criteria["address"] = normalise_phone(str(request.query_params["phone"]), field="phone")
    return await paged(gateway.runtime.db[OPT_OUTS], criteria, request.query_params, opt_out_view)


@post("/v1/sms/opt-outs", status_code=201, summary="Opt a handset out", tags=["SMS opt-outs"],
      opt={"body": OptOutBody})
async def add_opt_out(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Stop all SMS from this tenant to the number; 409 when it is already opted out."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, "send:sms")
    body = decode_body(await request.body(), OptOutBody)
    phone = normalise_phone(body.phone, field="phone")
    doc: Document = {"_id": new_id("opt_"), "tenant_id": principal.tenant_id, "channel": "sms",
           "address": phone, "source": "api", "keyword": None, "created_at": gateway.clock()}
    async with mongo_guard("adding an opt-out"):
        try:
            await gateway.runtime.db[OPT_OUTS].insert_one(doc)
        except DuplicateKeyError:
            raise ApiError(409, "already_opted_out", f"{phone} is already opted out") from None
    return Response({"success": True, "data": opt_out_view(doc)}, status_code=201)


@delete("/v1/sms/opt-outs", status_code=204, summary="Opt a handset back in", tags=["SMS opt-outs"],
        opt={"query": {"phone": {"type": "string"}}})
async def remove_opt_out(request: Request[Any, Any, Any]) -> None:
    """Remove ``?phone=`` from the tenant's opt-outs; 404 when it is not there."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, "send:sms")
    phone = normalise_phone(_query_value(request, "phone"), field="phone")
    async with mongo_guard("removing an opt-out"):
        result = await gateway.runtime.db[OPT_OUTS].delete_one(
            {"tenant_id": principal.tenant_id, "channel": "sms", "address": phone})
    if result.deleted_count == 0:
        raise ApiError(404, "not_found", f"{phone} is not opted out")


@get("/v1/suppressions", summary="List email suppressions", tags=["Email suppressions"],
     opt={"page": True, "query": {"email": {"type": "string"},
                                  "reason": {"type": "string", "enum": list(SUPPRESSION_REASONS)}}})
async def list_suppressions(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The tenant's suppressed addresses, newest first (``?email=``, ``?reason=`` filter)."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, "read:email")
    criteria: Document = {"tenant_id": principal.tenant_id}
    if request.query_params.get("email"):
        criteria["email"] = normalise_address(str(request.query_params["email"]), field="email").lower()
    reason = choice_param(request.query_params, "reason", SUPPRESSION_REASONS)
    if reason is not None:
        criteria["reason"] = reason
    return await paged(gateway.runtime.db[SUPPRESSIONS], criteria, request.query_params,
                       suppression_view)


@post("/v1/suppressions", status_code=201, summary="Suppress an address", tags=["Email suppressions"],
      opt={"body": SuppressionBody})
async def add_suppression(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Stop all email from this tenant to the address; 409 when it is already suppressed."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, "send:email")
    body = decode_body(await request.body(), SuppressionBody)
    email = normalise_address(body.email, field="email").lower()
    doc: Document = {"_id": new_id("sup_"), "tenant_id": principal.tenant_id, "email": email,
           "reason": body.reason, "source": "api", "message_id": None, "detail": {},
           "created_at": gateway.clock()}
    async with mongo_guard("adding a suppression"):
        try:
            await gateway.runtime.db[SUPPRESSIONS].insert_one(doc)
        except DuplicateKeyError:
            raise ApiError(409, "already_suppressed", f"{email} is already suppressed") from None
    return Response({"success": True, "data": suppression_view(doc)}, status_code=201)


@delete("/v1/suppressions", status_code=204, summary="Remove a suppression",
        tags=["Email suppressions"], opt={"query": {"email": {"type": "string"}}})
async def remove_suppression(request: Request[Any, Any, Any]) -> None:
    """Remove ``?email=`` from the tenant's suppressions; 404 when it is not there."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, "send:email")
    email = normalise_address(_query_value(request, "email"), field="email").lower()
    async with mongo_guard("removing a suppression"):
        result = await gateway.runtime.db[SUPPRESSIONS].delete_one(
            {"tenant_id": principal.tenant_id, "email": email})
    if result.deleted_count == 0:
        raise ApiError(404, "not_found", f"{email} is not suppressed")


LIST_ROUTES = [list_opt_outs, add_opt_out, remove_opt_out, list_suppressions, add_suppression,
               remove_suppression]
