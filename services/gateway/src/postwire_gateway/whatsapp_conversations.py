"""WhatsApp conversations (scope ``read:whatsapp``): who wrote to the tenant's line, and what.

``GET /v1/whatsapp/conversations`` lists the tenant's contacts, latest inbound first.
``GET /v1/whatsapp/conversations/{waId}`` is one contact's conversation: the inbound messages kept by
provider-ingest in ``conversations`` and the tenant's recent outbound messages to that contact (from
``messages``), oldest first, plus whether the contact opted out. ``waId`` is the contact's number
without ``+`` (``+15551234567`` is accepted too).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from litestar import Request, get
from litestar.params import FromPath
from pymongo import DESCENDING

from postwire_platform.errors import ApiError
from postwire_platform.mongo import CONVERSATIONS, MESSAGES, OPT_OUTS, Document
from postwire_whatsapp.numbers import e164, is_wa_id, wa_id

from .availability import mongo_guard
from .context import gateway_of
from .decoding import int_param
from .paging import paged
from .views import iso

SCOPE = "read:whatsapp"
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@get("/v1/whatsapp/conversations", summary="List WhatsApp conversations", tags=["WhatsApp message"],
     opt={"page": True})
async def list_conversations(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The tenant's conversations, the most recently active first; paged."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, SCOPE)
    return await paged(gateway.runtime.db[CONVERSATIONS], {"tenant_id": principal.tenant_id},
                       request.query_params, summary_view,
                       sort=[("last_inbound_at", DESCENDING), ("_id", DESCENDING)],
                       projection={"entries": {"$slice": -1}})  # type: ignore[dict-item]


@get("/v1/whatsapp/conversations/{contact:str}", summary="One WhatsApp conversation",
     tags=["WhatsApp message"],
     opt={"page": False, "query": {"limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}}})
async def get_conversation(request: Request[Any, Any, Any], contact: FromPath[str]) -> dict[str, Any]:
    """Inbound and outbound messages with one contact, oldest first (the newest ``limit`` of each)."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, SCOPE)
    wa = wa_id(contact)
    if not is_wa_id(wa) or contact.lstrip("+") != wa:
        raise ApiError(422, "validation_error",
                       "waId must be the contact's number in international form, digits only",
                       field="waId")
    limit = int_param(request.query_params, "limit", default=DEFAULT_LIMIT, minimum=1,
                      maximum=MAX_LIMIT)
    tenant = principal.tenant_id
    db = gateway.runtime.db
    async with mongo_guard("reading a conversation"):
        conversation, outbound, opted_out = await asyncio.gather(
            db[CONVERSATIONS].find_one({"_id": f"{tenant}:{wa}"},
                                       projection={"entries": {"$slice": -limit}}),
            db[MESSAGES].find({"tenant_id": tenant, "channel": "whatsapp", "to": e164(wa)},
                              projection={"timeline": False, "command": False})
            .sort([("accepted_at", DESCENDING)]).limit(limit).to_list(),
            db[OPT_OUTS].find_one({"tenant_id": tenant, "channel": "whatsapp", "address": wa},
                                  projection=["_id"]))
    if conversation is None and not outbound:
        raise ApiError(404, "not_found", f"no WhatsApp conversation with {wa}")
    entries = [_inbound(e) for e in (conversation or {}).get("entries", [])]
    entries += [_outbound(m) for m in outbound]
    entries.sort(key=lambda e: e.pop("_at"))
    return {"success": True, "data": {
        **summary_view(conversation or {"wa_id": wa}), "optedOut": opted_out is not None,
        "messages": entries}}


def summary_view(doc: Document) -> dict[str, Any]:
    """A conversation without its messages (the list's item)."""
    entries = doc.get("entries") or []
    last = entries[-1] if entries else None
    return {
        "waId": doc.get("wa_id"),
        "contactName": doc.get("contact_name"),
        "phoneNumberId": doc.get("phone_number_id"),
        "lastInboundAt": iso(doc.get("last_inbound_at")),
        "lastInboundText": last.get("body") if last else None,
        "optedOut": bool(doc.get("opted_out")),
        "createdAt": iso(doc.get("created_at")),
    }


def _inbound(entry: Document) -> dict[str, Any]:
    at = entry.get("occurred_at")
    return {"_at": _sortable(at), "direction": "inbound", "at": iso(at),
            "providerMessageId": entry.get("wamid"), "type": entry.get("type"),
            "text": entry.get("body"), "keyword": entry.get("keyword")}


def _outbound(message: Document) -> dict[str, Any]:
    at = message.get("accepted_at")
    template = message.get("template")
    return {"_at": _sortable(at), "direction": "outbound", "at": iso(at), "id": message["_id"],
            "providerMessageId": message.get("provider_message_id"),
            "type": "template" if template else "text", "text": message.get("text"),
            "template": template.get("name") if template else None, "status": message.get("status")}


def _sortable(at: Any) -> datetime:
    if not isinstance(at, datetime):
        return datetime.max.replace(tzinfo=UTC)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


CONVERSATION_ROUTES = [list_conversations, get_conversation]
