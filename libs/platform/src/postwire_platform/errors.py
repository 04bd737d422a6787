"""The SPEC's error format, raised from any handler and rendered the same everywhere.

``{"success": false, "error": "<machine_code>", "message": "<human text>", "code": <status>, "field": …}``
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error a client gets in the SPEC's format."""

    def __init__(self, status: int, error: str, message: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.field = field
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"success": False, "error": self.error, "message": self.message,
                               "code": self.status}
        if self.field is not None:
            out["field"] = self.field
        return out


def unavailable(what: str, retry_after: int = 5) -> ApiError:
    """503 for a dependency that is down: the request changed nothing and may be retried."""
    return ApiError(503, "service_unavailable", f"{what} is unavailable; retry shortly",
                    headers={"Retry-After": str(retry_after)})


def _render(exc: ApiError) -> Response[dict[str, Any]]:
    return Response(exc.body(), status_code=exc.status, headers=exc.headers)


def api_error_handler(_: Request[Any, Any, Any], exc: ApiError) -> Response[dict[str, Any]]:
    return _render(exc)


def http_exception_handler(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    """Litestar's own errors (404 route, 405, 400 bad JSON) in our format."""
    codes = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
             405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type",
             429: "rate_limited"}
    status = exc.status_code
    if isinstance(exc, ValidationException):
        return _render(ApiError(400, "invalid_json", "the request body is not valid JSON"))
    return _render(ApiError(status, codes.get(status, "error"), str(exc.detail)))


def internal_error_handler(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error", exc_info=exc)
    return _render(ApiError(HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "internal error"))


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ApiError: api_error_handler,
    HTTPException: http_exception_handler,
    Exception: internal_error_handler,
}
