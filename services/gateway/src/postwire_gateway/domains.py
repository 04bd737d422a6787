"""``/v1/domains``: sending domains (create with a fresh DKIM key, list, get, verify, delete).

Scopes: changes need ``members:write`` (account configuration, like the WhatsApp line); reads accept
``members:read``, ``members:write`` or ``read:email``.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.params import FromPath
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from postwire_platform.errors import ApiError
from postwire_platform.ids import new_id
from postwire_platform.mongo import DOMAINS, Document

from .auth import Principal
from .availability import mongo_guard
from .context import Gateway, gateway_of
from .decoding import decode_body, int_param
from .domain_dns import check_domain, dns_records, generate_key_pair, normalise_domain
from .email_services import email_services
from .views import iso, pagination

WRITE = "members:write"
READ_SCOPES = (WRITE, "members:read", "read:email")


class CreateDomain(msgspec.Struct, kw_only=True, frozen=True):
    """``POST /v1/domains``."""

    domain: Annotated[str, msgspec.Meta(min_length=3, max_length=253)]


async def _read_principal(gateway: Gateway, request: Request[Any, Any, Any]) -> Principal:
    for scope in READ_SCOPES:
        try:
            return await gateway.auth.authenticate(request, scope)
        except ApiError as exc:
            if exc.status != 403:
                raise
    raise ApiError(403, "forbidden", f"this API key lacks one of the scopes {', '.join(READ_SCOPES)}")


def domain_view(gateway: Gateway, doc: Document) -> dict[str, Any]:
    settings = gateway.settings
    checks = doc.get("checks") or {}
    return {
        "id": doc["_id"], "domain": doc["domain"], "status": doc["status"],
        "dkimSelector": doc["dkim_selector"], "returnPathDomain": doc["return_path_domain"],
        "returnPathVerified": bool(doc.get("return_path_verified")),
        "dnsRecords": dns_records(doc, spf_include=settings.email_spf_include,
                                  return_path_host=settings.email_return_path_host),
        "checks": checks, "lastCheckedAt": iso(doc.get("last_checked_at")),
        "verifiedAt": iso(doc.get("verified_at")), "createdAt": iso(doc.get("created_at")),
    }


async def _find(gateway: Gateway, tenant_id: str, domain_id: str) -> Document:
    async with mongo_guard("reading a domain"):
        doc = await gateway.runtime.db[DOMAINS].find_one({"_id": domain_id, "tenant_id": tenant_id},
                                                         projection={"dkim_private_key": False})
    if doc is None:
        raise ApiError(404, "not_found", f"no domain with id {domain_id!r}")
    return doc


@post("/v1/domains", status_code=201, summary="Add a sending domain", tags=["domains"],
      opt={"body": CreateDomain})
async def create_domain(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Generate a 2048-bit DKIM key (the private key is stored encrypted) and return the DNS records
    to publish; 409 when the account already has this domain."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, WRITE)
    body = decode_body(await request.body(), CreateDomain)
    domain = normalise_domain(body.domain)
    services = email_services(gateway)
    pair = await generate_key_pair()
    now = gateway.clock()
    domain_id = new_id("dom_")
    doc: Document = {
        "_id": domain_id, "tenant_id": principal.tenant_id, "domain": domain, "status": "pending",
        "dkim_selector": f"pw{now:%Y%m}",
        "dkim_private_key": services.keyring.encrypt(
            pair.private_pem, context=f"domains.dkim_private_key:{domain_id}"),
        "dkim_public_key": pair.public_b64,
        "return_path_domain": f"{gateway.settings.email_return_path_prefix}.{domain}",
        "dkim_verified": False, "spf_verified": False, "return_path_verified": False,
        "checks": {}, "last_checked_at": None, "verified_at": None, "created_at": now,
    }
    async with mongo_guard("creating a domain"):
        try:
            await gateway.runtime.db[DOMAINS].insert_one(doc)
        except DuplicateKeyError:
            raise ApiError(409, "domain_exists",
                           f"{domain} is already a sending domain of this account") from None
    return Response({"success": True, "data": domain_view(gateway, doc)}, status_code=201)


@get("/v1/domains", summary="List sending domains", tags=["domains"], opt={"page": True})
async def list_domains(request: Request[Any, Any, Any]) -> dict[str, Any]:
    gateway = gateway_of(request)
    principal = await _read_principal(gateway, request)
    page = int_param(request.query_params, "page", default=1, minimum=1)
    page_size = int_param(request.query_params, "pageSize", default=20, minimum=1, maximum=100)
    coll = gateway.runtime.db[DOMAINS]
    criteria = {"tenant_id": principal.tenant_id}
    async with mongo_guard("listing domains"):
        cursor = (coll.find(criteria, projection={"dkim_private_key": False}).sort([("domain", 1)])
                  .skip((page - 1) * page_size).limit(page_size))
        docs, total = await asyncio.gather(cursor.to_list(), coll.count_documents(criteria))
    return {"data": [domain_view(gateway, d) for d in docs],
            "pagination": pagination(page, page_size, total)}


@get("/v1/domains/{domain_id:str}", summary="One sending domain", tags=["domains"],
     opt={"page": False})
async def get_domain(request: Request[Any, Any, Any], domain_id: FromPath[str]) -> dict[str, Any]:
    gateway = gateway_of(request)
    principal = await _read_principal(gateway, request)
    return {"success": True, "data": domain_view(gateway, await _find(gateway, principal.tenant_id,
                                                                       domain_id))}


@post("/v1/domains/{domain_id:str}/verify", status_code=200, summary="Check a domain's DNS records",
      tags=["domains"])
async def verify_domain(request: Request[Any, Any, Any], domain_id: FromPath[str]) -> dict[str, Any]:
    """Look the DKIM, SPF and return-path records up; the domain is verified once DKIM and SPF are
    published (a verified domain stays verified if a later check fails: it is reported, not revoked)."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, WRITE)
    doc = await _find(gateway, principal.tenant_id, domain_id)
    services = email_services(gateway)
    settings = gateway.settings
    checks = await check_domain(services.resolver, doc, spf_include=settings.email_spf_include,
                                return_path_host=settings.email_return_path_host)
    now = gateway.clock()
    verified = checks["dkim"].ok and checks["spf"].ok
    changes: Document = {
        "dkim_verified": checks["dkim"].ok, "spf_verified": checks["spf"].ok,
        "return_path_verified": checks["return_path"].ok, "last_checked_at": now,
        "checks": {name: {"ok": c.ok, "found": c.found[:5], "reason": c.reason}
                   for name, c in checks.items()},
    }
    if verified:
        changes["status"] = "verified"
        if doc.get("verified_at") is None:
            changes["verified_at"] = now
    async with mongo_guard("recording a domain check"):
        updated = await gateway.runtime.db[DOMAINS].find_one_and_update(
            {"_id": domain_id, "tenant_id": principal.tenant_id}, {"$set": changes},
            projection={"dkim_private_key": False}, return_document=ReturnDocument.AFTER)
    if updated is None:
        raise ApiError(404, "not_found", f"no domain with id {domain_id!r}")
    if updated["status"] == "verified":
        services.domains.remember(principal.tenant_id, updated["domain"])
    return {"success": True, "data": domain_view(gateway, updated)}


@delete("/v1/domains/{domain_id:str}", status_code=204, summary="Remove a sending domain",
        tags=["domains"])
async def delete_domain(request: Request[Any, Any, Any], domain_id: FromPath[str]) -> None:
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, WRITE)
    async with mongo_guard("deleting a domain"):
        doc = await gateway.runtime.db[DOMAINS].find_one_and_delete(
            {"_id": domain_id, "tenant_id": principal.tenant_id}, projection=["domain"])
    if doc is None:
        raise ApiError(404, "not_found", f"no domain with id {domain_id!r}")
    email_services(gateway).domains.forget(principal.tenant_id, doc["domain"])


DOMAIN_ROUTES = [create_domain, list_domains, get_domain, verify_domain, delete_domain]
