"""``/v1/templates``: templates with versions for every channel (create, list, get, delete, add a
version, publish one, roll back, preview).

Scopes: writes need ``templates:write``; reads accept ``templates:write`` or any ``read:<channel>``
scope (whoever reads messages may see the templates they were made from).
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
from postwire_platform.mongo import TEMPLATE_VERSIONS, TEMPLATES, Document

from .auth import Principal
from .availability import mongo_guard
from .context import Gateway, gateway_of
from .decoding import choice_param, decode_body, int_param
from .template_store import CHANNELS, check_content, render_version
from .views import iso, pagination

WRITE = "templates:write"
READ_SCOPES = (WRITE, "read:email", "read:sms", "read:whatsapp")
MAX_SOURCE = 500_000

Source = Annotated[str, msgspec.Meta(max_length=MAX_SOURCE)]


class CreateTemplate(msgspec.Struct, rename="camel", kw_only=True, frozen=True):
    """``POST /v1/templates``: the template and its version 1 (published unless ``publish`` is false)."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    channel: str = "email"
    description: Annotated[str, msgspec.Meta(max_length=1000)] = ""
    subject: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)] | None = None
    html: Source | None = None
    text: Source | None = None
    publish: bool = True


class AddVersion(msgspec.Struct, rename="camel", kw_only=True, frozen=True):
    """``POST /v1/templates/{id}/versions``: a new version (published only if ``publish``)."""

    subject: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)] | None = None
    html: Source | None = None
    text: Source | None = None
    note: Annotated[str, msgspec.Meta(max_length=500)] = ""
    publish: bool = False


class Preview(msgspec.Struct, rename="camel", kw_only=True, frozen=True):
    """``POST /v1/templates/{id}/preview``: render a version with variables, send nothing."""

    variables: dict[str, Any] = {}
    version: Annotated[int, msgspec.Meta(ge=1)] | None = None


async def authenticate_read(gateway: Gateway, request: Request[Any, Any, Any]) -> Principal:
    """The caller, who must hold one of ``READ_SCOPES``; else the 403 of the first."""
    refusal: ApiError | None = None
    for scope in READ_SCOPES:
        try:
            return await gateway.auth.authenticate(request, scope)
        except ApiError as exc:
            if exc.status != 403:
                raise
            refusal = refusal or exc
    assert refusal is not None
    raise ApiError(403, "forbidden", f"this API key lacks one of the scopes {', '.join(READ_SCOPES)}")


def template_view(doc: Document, version: Document | None = None) -> dict[str, Any]:
    view = {
        "id": doc["_id"], "name": doc["name"], "channel": doc["channel"],
        "description": doc.get("description") or "",
        "publishedVersion": doc.get("published_version"),
        "latestVersion": doc.get("latest_version"),
        "createdAt": iso(doc.get("created_at")), "updatedAt": iso(doc.get("updated_at")),
    }
    if version is not None:
        view["published"] = version_view(version, doc)
    return view


def version_view(doc: Document, template: Document | None = None) -> dict[str, Any]:
    return {
        "version": doc["version"], "subject": doc.get("subject"), "html": doc.get("html"),
        "text": doc.get("text"), "note": doc.get("note") or "",
        "published": template is not None and template.get("published_version") == doc["version"],
        "createdAt": iso(doc.get("created_at")),
    }


def _version_doc(template_id: str, tenant_id: str, number: int, body: CreateTemplate | AddVersion,
                 now: Any, note: str = "") -> Document:
    return {"_id": f"{template_id}:{number}", "template_id": template_id, "tenant_id": tenant_id,
            "version": number, "subject": body.subject, "html": body.html, "text": body.text,
            "note": note, "created_at": now}


async def _template(gateway: Gateway, tenant_id: str, template_id: str) -> Document:
    async with mongo_guard("reading a template"):
        doc = await gateway.runtime.db[TEMPLATES].find_one({"_id": template_id, "tenant_id": tenant_id})
    if doc is None:
        raise ApiError(404, "not_found", f"no template with id {template_id!r}")
    return doc


async def _version(gateway: Gateway, template: Document, number: int) -> Document:
    async with mongo_guard("reading a template version"):
        doc = await gateway.runtime.db[TEMPLATE_VERSIONS].find_one(
            {"_id": f"{template['_id']}:{number}"})
    if doc is None:
        raise ApiError(404, "not_found", f"template {template['_id']!r} has no version {number}")
    return doc


@post("/v1/templates", status_code=201, summary="Create a template", tags=["templates"],
      opt={"body": CreateTemplate})
async def create_template(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """A template and its version 1; 409 when the tenant already has a template of that name."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, WRITE)
    body = decode_body(await request.body(), CreateTemplate)
    if body.channel not in CHANNELS:
        raise ApiError(422, "validation_error", f"channel must be one of {', '.join(CHANNELS)}",
                       field="channel")
    check_content(body.channel, body.subject, body.html, body.text)
    now = gateway.clock()
    template_id = new_id("tpl_")
    doc: Document = {
        "_id": template_id, "tenant_id": principal.tenant_id, "name": body.name,
        "channel": body.channel, "description": body.description,
        "published_version": 1 if body.publish else None, "latest_version": 1,
        "publish_history": [], "created_at": now, "updated_at": now,
    }
    version = _version_doc(template_id, principal.tenant_id, 1, body, now)
    db = gateway.runtime.db
    async with mongo_guard("creating a template"):
        await db[TEMPLATE_VERSIONS].insert_one(version)
        try:
            await db[TEMPLATES].insert_one(doc)
        except DuplicateKeyError:
            await db[TEMPLATE_VERSIONS].delete_one({"_id": version["_id"]})
            raise ApiError(409, "template_exists",
                           f"a template named {body.name!r} already exists") from None
    return Response({"success": True, "data": {**template_view(doc),
                                                "version": version_view(version, doc)}},
                    status_code=201)


@get("/v1/templates", summary="List templates", tags=["templates"],
     opt={"page": True, "query": {"channel": {"type": "string", "enum": list(CHANNELS)}}})
async def list_templates(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The tenant's templates by name; filter ``channel``; paged."""
    gateway = gateway_of(request)
    principal = await authenticate_read(gateway, request)
    query = request.query_params
    page = int_param(query, "page", default=1, minimum=1)
    page_size = int_param(query, "pageSize", default=20, minimum=1, maximum=100)
    criteria: Document = {"tenant_id": principal.tenant_id}
    channel = choice_param(query, "channel", CHANNELS)
    if channel:
        criteria["channel"] = channel
    coll = gateway.runtime.db[TEMPLATES]
    async with mongo_guard("listing templates"):
        cursor = coll.find(criteria).sort([("name", 1)]).skip((page - 1) * page_size).limit(page_size)
        docs, total = await asyncio.gather(cursor.to_list(), coll.count_documents(criteria))
    return {"data": [template_view(d) for d in docs], "pagination": pagination(page, page_size, total)}


@get("/v1/templates/{template_id:str}", summary="One template", tags=["templates"],
     opt={"page": False})
async def get_template(request: Request[Any, Any, Any], template_id: FromPath[str]) -> dict[str, Any]:
    """The template with its published version's content."""
    gateway = gateway_of(request)
    principal = await authenticate_read(gateway, request)
    doc = await _template(gateway, principal.tenant_id, template_id)
    published = doc.get("published_version")
    version = await _version(gateway, doc, int(published)) if published else None
    return {"success": True, "data": template_view(doc, version)}


@delete("/v1/templates/{template_id:str}", status_code=204, summary="Delete a template",
        tags=["templates"])
async def delete_template(request: Request[Any, Any, Any], template_id: FromPath[str]) -> None:
    """Delete a template and its versions (messages already sent keep their rendered content)."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, WRITE)
    db = gateway.runtime.db
    async with mongo_guard("deleting a template"):
        result = await db[TEMPLATES].delete_one({"_id": template_id, "tenant_id": principal.tenant_id})
        if result.deleted_count:
            await db[TEMPLATE_VERSIONS].delete_many({"template_id": template_id})
    if not result.deleted_count:
        raise ApiError(404, "not_found", f"no template with id {template_id!r}")


@post("/v1/templates/{template_id:str}/versions", status_code=201, summary="Add a template version",
      tags=["templates"], opt={"body": AddVersion})
async def add_version(request: Request[Any, Any, Any],
                      template_id: FromPath[str]) -> Response[dict[str, Any]]:
    """The next version (published at once only with ``publish: true``)."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, WRITE)
    body = decode_body(await request.body(), AddVersion)
    template = await _template(gateway, principal.tenant_id, template_id)
    check_content(template["channel"], body.subject, body.html, body.text)
    now = gateway.clock()
    db = gateway.runtime.db
    async with mongo_guard("adding a template version"):
        updated = await db[TEMPLATES].find_one_and_update(
            {"_id": template_id, "tenant_id": principal.tenant_id},
            {"$inc": {"latest_version": 1}, "$set": {"updated_at": now}},
            return_document=ReturnDocument.AFTER)
        if updated is None:
            raise ApiError(404, "not_found", f"no template with id {template_id!r}")
        number = int(updated["latest_version"])
        version = _version_doc(template_id, principal.tenant_id, number, body, now, body.note)
        await db[TEMPLATE_VERSIONS].insert_one(version)
    if body.publish:
        updated = await _publish(gateway, updated, number)
    return Response({"success": True, "data": version_view(version, updated)}, status_code=201)


@get("/v1/templates/{template_id:str}/versions", summary="List template versions",
     tags=["templates"], opt={"page": True})
async def list_versions(request: Request[Any, Any, Any], template_id: FromPath[str]) -> dict[str, Any]:
    """Every version, newest first; paged."""
    gateway = gateway_of(request)
    principal = await authenticate_read(gateway, request)
    template = await _template(gateway, principal.tenant_id, template_id)
    page = int_param(request.query_params, "page", default=1, minimum=1)
    page_size = int_param(request.query_params, "pageSize", default=20, minimum=1, maximum=100)
    coll = gateway.runtime.db[TEMPLATE_VERSIONS]
    criteria = {"template_id": template_id}
    async with mongo_guard("listing template versions"):
        cursor = coll.find(criteria).sort([("version", -1)]).skip((page - 1) * page_size).limit(
            page_size)
        docs, total = await asyncio.gather(cursor.to_list(), coll.count_documents(criteria))
    return {"data": [version_view(d, template) for d in docs],
            "pagination": pagination(page, page_size, total)}


@get("/v1/templates/{template_id:str}/versions/{version:int}", summary="One template version",
     tags=["templates"], opt={"page": False})
async def get_version(request: Request[Any, Any, Any], template_id: FromPath[str],
                      version: FromPath[int]) -> dict[str, Any]:
    gateway = gateway_of(request)
    principal = await authenticate_read(gateway, request)
    template = await _template(gateway, principal.tenant_id, template_id)
    return {"success": True, "data": version_view(await _version(gateway, template, version), template)}


async def _publish(gateway: Gateway, template: Document, number: int) -> Document:
    """Make ``number`` the published version; the one it replaces goes onto the rollback history."""
    current = template.get("published_version")
    if current == number:
        return template
    change: Document = {"$set": {"published_version": number, "updated_at": gateway.clock()}}
    if current is not None:
        change["$push"] = {"publish_history": current}
    async with mongo_guard("publishing a template version"):
        updated = await gateway.runtime.db[TEMPLATES].find_one_and_update(
            {"_id": template["_id"], "published_version": current}, change,
            return_document=ReturnDocument.AFTER)
    if updated is None:
        raise ApiError(409, "conflict", "the template was published concurrently; try again")
    return updated


@post("/v1/templates/{template_id:str}/versions/{version:int}/publish", status_code=200,
      summary="Publish a template version", tags=["templates"])
async def publish_version(request: Request[Any, Any, Any], template_id: FromPath[str],
                          version: FromPath[int]) -> dict[str, Any]:
    """Sends without a version use this one from now on."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, WRITE)
    template = await _template(gateway, principal.tenant_id, template_id)
    content = await _version(gateway, template, version)
    updated = await _publish(gateway, template, version)
    return {"success": True, "data": template_view(updated, content)}


@post("/v1/templates/{template_id:str}/rollback", status_code=200,
      summary="Roll back to the previously published version", tags=["templates"])
async def rollback_template(request: Request[Any, Any, Any],
                            template_id: FromPath[str]) -> dict[str, Any]:
    """Publish again the version that was published before the current one; 409 if there is none."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, WRITE)
    template = await _template(gateway, principal.tenant_id, template_id)
    history = list(template.get("publish_history") or [])
    if not history:
        raise ApiError(409, "nothing_to_roll_back", "no version was published before this one")
    previous = int(history[-1])
    async with mongo_guard("rolling back a template"):
        updated = await gateway.runtime.db[TEMPLATES].find_one_and_update(
            {"_id": template_id, "published_version": template.get("published_version"),
             "publish_history": history},
            {"$set": {"published_version": previous, "updated_at": gateway.clock()},
             "$pop": {"publish_history": 1}},
            return_document=ReturnDocument.AFTER)
    if updated is None:
        raise ApiError(409, "conflict", "the template was published concurrently; try again")
    return {"success": True, "data": template_view(updated, await _version(gateway, updated, previous))}


@post("/v1/templates/{template_id:str}/preview", status_code=200, summary="Render a template",
      tags=["templates"], opt={"body": Preview})
async def preview_template(request: Request[Any, Any, Any], template_id: FromPath[str]) -> dict[str, Any]:
    """Render the published (or named) version with ``variables``, exactly as a send would."""
    gateway = gateway_of(request)
    principal = await authenticate_read(gateway, request)
    body = decode_body(await request.body(), Preview)
    template = await _template(gateway, principal.tenant_id, template_id)
    number = body.version or template.get("published_version")
    if number is None:
        raise ApiError(422, "template_not_published", "the template has no published version",
                       field="version")
    rendered = render_version(await _version(gateway, template, int(number)), template["channel"],
                              body.variables)
    return {"success": True, "data": {"version": rendered.version, "subject": rendered.subject,
                                      "html": rendered.html, "text": rendered.text}}


TEMPLATE_ROUTES = [create_template, list_templates, get_template, delete_template, add_version,
                   list_versions, get_version, publish_version, rollback_template, preview_template]
