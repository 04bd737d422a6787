"""SMS sender ids: requests by tenants, review by the operator, the approved list.

A request is a ``sender_ids`` document with ``status: "pending"``; review sets ``approved`` or
``rejected`` (with the reason). A rejected sender id may be requested again. ``admin`` keys review any
tenant's requests and list them all (``?tenantId=`` narrows); tenant keys see only their own.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath
from pymongo.errors import DuplicateKeyError

from postwire_platform.errors import ApiError
from postwire_platform.ids import new_id
from postwire_platform.mongo import SENDER_IDS, Document

from .availability import mongo_guard
from .context import gateway_of
from .decoding import choice_param, decode_body
from .paging import paged
from .views import iso

TAGS = ["SMS sender ids"]
_ALPHANUMERIC = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 .&_-]{1,11}$")
_NUMERIC = re.compile(r"^\+?[0-9]{3,15}$")
STATUSES = ("pending", "approved", "rejected")


class SenderIdRequestBody(msgspec.Struct, rename="camel", kw_only=True, frozen=True):
    """``POST /v1/sms/sender-id-requests``."""

    sender_id: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    purpose: Annotated[str, msgspec.Meta(max_length=1000)] = ""
    countries: Annotated[list[Annotated[str, msgspec.Meta(min_length=2, max_length=2)]],
                         msgspec.Meta(max_length=250)] = []


class ReviewBody(msgspec.Struct, rename="camel", kw_only=True, frozen=True):
    """``POST /v1/sms/sender-id-requests/{requestId}/review``."""

    decision: Literal["approve", "reject"]
    reason: Annotated[str, msgspec.Meta(max_length=1000)] = ""


def request_view(doc: Document) -> dict[str, Any]:
    return {
        "id": doc["_id"], "tenantId": doc["tenant_id"], "senderId": doc["sender_id"],
        "status": doc.get("status"), "purpose": doc.get("purpose", ""),
        "countries": doc.get("countries", []), "reason": doc.get("reason"),
        "createdAt": iso(doc.get("created_at")), "reviewedAt": iso(doc.get("reviewed_at")),
    }


def check_sender_id(value: str) -> str:
    """An alphanumeric sender (1-11 characters with a letter) or a numeric one (3-15 digits)."""
    if _ALPHANUMERIC.match(value) or _NUMERIC.match(value):
        return value
    raise ApiError(422, "invalid_sender_id",
                   "a sender id is 1 to 11 letters, digits, spaces or . & _ - with at least one letter, "
                   "or a number of 3 to 15 digits", field="senderId")


@post("/v1/sms/sender-id-requests", status_code=201, summary="Request a sender id", tags=TAGS,
      opt={"body": SenderIdRequestBody})
async def request_sender_id(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Ask the operator to approve a sender id; 409 when it is already approved or pending."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, "send:sms")
    body = decode_body(await request.body(), SenderIdRequestBody)
    sender_id = check_sender_id(body.sender_id.strip())
    countries = sorted({c.upper() for c in body.countries})
    now = gateway.clock()
    senders = gateway.runtime.db[SENDER_IDS]
    fields = {"status": "pending", "purpose": body.purpose, "countries": countries,
              "created_at": now, "reviewed_at": None, "reason": None}
    async with mongo_guard("requesting a sender id"):
        # a rejected request may be made again; anything else is a duplicate
        again = await senders.find_one_and_update(
            {"tenant_id": principal.tenant_id, "sender_id": sender_id, "status": "rejected"},
            {"$set": fields}, return_document=True)
        if again is None:
            doc = {"_id": new_id("sid_"), "tenant_id": principal.tenant_id, "sender_id": sender_id,
                   **fields}
            try:
                await senders.insert_one(doc)
            except DuplicateKeyError:
                existing = await senders.find_one({"tenant_id": principal.tenant_id,
                                                   "sender_id": sender_id})
                state = existing.get("status") if existing else "pending"
                raise ApiError(409, "sender_id_exists",
                               f"sender id {sender_id!r} is already {state}") from None
        else:
            doc = again
    return Response({"success": True, "data": request_view(doc)}, status_code=201)


@get("/v1/sms/sender-id-requests", summary="List sender id requests", tags=TAGS,
     opt={"page": True, "query": {"status": {"type": "string", "enum": list(STATUSES)},
                                  "tenantId": {"type": "string"}}})
async def list_sender_id_requests(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The tenant's requests (``status`` filter); an admin key sees every tenant's."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, "read:sms")
    criteria: Document = {}
    if "admin" in principal.scopes:
        tenant = request.query_params.get("tenantId")
        if tenant:
            criteria["tenant_id"] = str(tenant)
    else:
        criteria["tenant_id"] = principal.tenant_id
    status = choice_param(request.query_params, "status", STATUSES)
    if status is not None:
        criteria["status"] = status
    return await paged(gateway.runtime.db[SENDER_IDS], criteria, request.query_params, request_view)


@post("/v1/sms/sender-id-requests/{request_id:str}/review", status_code=200,
      summary="Approve or reject a sender id request (admin)", tags=TAGS, opt={"body": ReviewBody})
async def review_sender_id_request(request: Request[Any, Any, Any],
                                   request_id: FromPath[str]) -> dict[str, Any]:
    """Approve, or reject with a reason; 409 when the request was already reviewed."""
    gateway = gateway_of(request)
    await gateway.auth.authenticate(request, "admin")
    body = decode_body(await request.body(), ReviewBody)
    if body.decision == "reject" and not body.reason.strip():
        raise ApiError(422, "validation_error", "a rejection needs a reason", field="reason")
    senders = gateway.runtime.db[SENDER_IDS]
    status = "approved" if body.decision == "approve" else "rejected"
    async with mongo_guard("reviewing a sender id"):
        doc = await senders.find_one_and_update(
            {"_id": request_id, "status": "pending"},
            {"$set": {"status": status, "reason": body.reason.strip() or None,
                      "reviewed_at": gateway.clock()}}, return_document=True)
        if doc is None:
            exists = await senders.find_one({"_id": request_id}, projection=["status"])
    if doc is None:
        if exists is None:
            raise ApiError(404, "not_found", f"no sender id request with id {request_id!r}")
        raise ApiError(409, "already_reviewed", f"this request is already {exists['status']}")
    return {"success": True, "data": request_view(doc)}


@get("/v1/sms/sender-ids", summary="Approved sender ids", tags=TAGS, opt={"page": True})
async def list_sender_ids(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The sender ids the tenant may send from."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, "read:sms")
    return await paged(gateway.runtime.db[SENDER_IDS],
                       {"tenant_id": principal.tenant_id, "status": "approved"},
                       request.query_params, request_view)


SENDER_ID_ROUTES = [request_sender_id, list_sender_id_requests, review_sender_id_request,
                    list_sender_ids]
