"""The gateway's OpenAPI document: Litestar's, completed with what hand-decoded handlers cannot tell it.

Handlers decode their bodies and query strings themselves (so every failure is in the SPEC's error
format), which leaves Litestar without their types. Each handler says them in its ``opt``:
``body`` (the msgspec Struct of the JSON body), ``batch_of`` (a batch of that Struct), ``query`` (the
query parameters, name → JSON schema), ``page`` (answers the SPEC's paged list). This module adds them,
the success and error envelopes, every error status with the error schema, and bearer auth. The result
is served at ``/openapi.json`` and committed as ``openapi.json`` (``make openapi``; a test fails on drift).
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get

from .paging import MAX_PAGE_SIZE

TITLE = "Postwire API"
VERSION = "1.0.0"

ERRORS: dict[int, str] = {
    400: "Malformed JSON or a body that is not an object",
    401: "Missing, unknown or revoked API key",
    402: "The tenant is suspended",
    403: "The API key lacks the scope this operation needs",
    404: "Unknown resource, or another tenant's",
    409: "Duplicate resource or idempotency conflict",
    413: "Request body too large",
    422: "Validation failed; `field` names the offending field",
    429: "Rate limit exceeded; see Retry-After",
    503: "A dependency is down; nothing changed; retry after Retry-After",
}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["success", "error", "message", "code"],
    "properties": {
        "success": {"type": "boolean", "enum": [False]},
        "error": {"type": "string", "description": "machine-readable code"},
        "message": {"type": "string"},
        "code": {"type": "integer", "description": "the HTTP status"},
        "field": {"type": "string", "description": "the offending field (422 only)"},
    },
}
ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["success", "data"],
    "properties": {"success": {"type": "boolean", "enum": [True]}, "data": {}},
}
PAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["data", "pagination"],
    "properties": {
        "data": {"type": "array", "items": {"type": "object"}},
        "pagination": {
            "type": "object",
            "required": ["page", "pageSize", "total", "totalPages", "hasNext"],
            "properties": {"page": {"type": "integer"}, "pageSize": {"type": "integer"},
                           "total": {"type": "integer"}, "totalPages": {"type": "integer"},
                           "hasNext": {"type": "boolean"}},
        },
    },
}
RATE_HEADERS: dict[str, Any] = {name: {"schema": {"type": "integer"}, "description": text} for name, text in (
    ("X-RateLimit-Limit", "requests per minute allowed for this key"),
    ("X-RateLimit-Remaining", "requests left in the current minute"),
    ("X-RateLimit-Reset", "when the current minute window ends (epoch seconds)"))}

PAGE_QUERY: dict[str, dict[str, Any]] = {
    "page": {"type": "integer", "minimum": 1},
    "pageSize": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
}
IDEMPOTENCY_HEADERS = [
    {"name": name, "in": "header", "required": False,
     "schema": {"type": "string", "minLength": 1, "maxLength": 255},
     "description": "replays the first answer for 24 h (per tenant); 409 for another body"}
    for name in ("Idempotency-Key", "X-Idempotency-Key")]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def build(app: Litestar) -> dict[str, Any]:
    """The complete document of ``app``."""
    doc: dict[str, Any] = app.openapi_schema.to_schema()
    doc["info"] = {"title": TITLE, "version": VERSION,
                   "description": "One API for transactional email, SMS and WhatsApp. Errors are always "
                                  "`{success: false, error, message, code, field?}`."}
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.update({"Error": ERROR_SCHEMA, "Envelope": ENVELOPE_SCHEMA, "Page": PAGE_SCHEMA})
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer",
                                                "description": "an API key: pw_live_… or pw_test_…"}}
    bodies: dict[str, Any] = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            body = handler.opt.get("body")
            if body is not None:
                bodies[body.__name__] = body
    if bodies:
        _, found = msgspec.json.schema_components(list(bodies.values()),
                                                  ref_template="#/components/schemas/{name}")
        schemas.update(found)

    for route in app.routes:
        path = getattr(route, "path_format", route.path)
        if path not in doc.get("paths", {}):
            continue
        for handler in getattr(route, "route_handlers", ()):
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                operation = doc["paths"][path].get(method.lower())
                if operation is not None:
                    _complete(operation, handler, path)
    doc["paths"] = dict(sorted(doc["paths"].items()))
    return doc


def _complete(operation: dict[str, Any], handler: Any, path: str) -> None:
    opt = handler.opt
    status = str(handler.status_code)
    operation["security"] = [{"bearer": []}]
    if handler.fn.__doc__ and not operation.get("description"):
        operation["description"] = " ".join(handler.fn.__doc__.split())
    body = opt.get("body")
    if body is not None:
        schema: dict[str, Any] = _ref(body.__name__)
        if opt.get("batch_of"):
            schema = {"type": "object", "required": ["messages"],
                      "properties": {"messages": {"type": "array", "minItems": 1, "maxItems": 1000,
                                                  "items": schema}}}
        operation["requestBody"] = {"required": True,
                                    "content": {"application/json": {"schema": schema}}}
    parameters = [p for p in operation.get("parameters", []) if p.get("in") != "query"]
    query = {**(PAGE_QUERY if opt.get("page") else {}), **opt.get("query", {})}
    parameters += [{"name": name, "in": "query", "required": False, "schema": schema}
                   for name, schema in query.items()]
    if opt.get("idempotent"):
        parameters += IDEMPOTENCY_HEADERS
    if parameters:
        operation["parameters"] = parameters
    if status == "204":
        success: dict[str, Any] = {"description": "Done", "headers": RATE_HEADERS}
    else:
        if opt.get("page"):
            schema = _ref("Page")
        elif "page" in opt or handler.http_methods != {"GET"}:
            schema = _ref("Envelope")
        else:  # a GET that does not say whether it pages
            schema = {"anyOf": [_ref("Envelope"), _ref("Page")]}
        success = {"description": operation.get("responses", {}).get(status, {}).get(
            "description", "OK"), "headers": RATE_HEADERS,
            "content": {"application/json": {"schema": schema}}}
    operation["responses"] = {status: success, **{
        str(code): {"description": text, "content": {"application/json": {"schema": _ref("Error")}}}
        for code, text in ERRORS.items()}}


def render(app: Litestar) -> str:
    """The document as committed: sorted keys, two-space indent, trailing newline."""
    return json.dumps(build(app), indent=2, sort_keys=True) + "\n"


@get("/openapi.json", include_in_schema=False)
async def openapi_json(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The OpenAPI document."""
    state = request.app.state
    if getattr(state, "openapi_rendered", None) is None:
        state.openapi_rendered = render(request.app).encode()
    return Response(state.openapi_rendered, media_type="application/json")
