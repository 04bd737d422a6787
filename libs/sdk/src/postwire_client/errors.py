"""Exceptions raised by the client.

Every HTTP error Postwire answers has the same body::

    {"success": false, "error": "<machine_code>", "message": "<human text>", "code": <status>,
     "field": "<field>"}   # field only on 422

and becomes an :class:`APIError` subclass chosen by its status, carrying those fields. Failures that never
got an answer (the connection could not be made, or broke, after the retries) are
:class:`APIConnectionError`. Everything the client raises derives from :class:`PostwireError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import msgspec


class PostwireError(Exception):
    """The base of every exception the client raises."""

    message: str

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class APIError(PostwireError):
    """Postwire answered with an error status; the SPEC's error body is in the attributes."""

    status_code: int
    """The HTTP status of the answer."""
    error: str
    """The machine-readable code, e.g. ``validation_error``, ``sender_id_not_approved``."""
    code: int
    """The status as the body states it (the same as ``status_code`` for Postwire's answers)."""
    field: str | None
    """On 422: the request field at fault, as spelled on the wire (``senderId``)."""
    body: Any
    """The decoded error body (or the raw text when it was not JSON)."""
    headers: httpx.Headers

    def __init__(self, status_code: int, error: str, message: str, *, code: int | None = None,
                 field: str | None = None, body: Any = None,
                 headers: httpx.Headers | Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error = error
        self.code = code if code is not None else status_code
        self.field = field
        self.body = body
        self.headers = httpx.Headers(headers or {})

    def __str__(self) -> str:
        where = f" (field {self.field})" if self.field else ""
        return f"{self.status_code} {self.error}: {self.message}{where}"

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(status_code={self.status_code}, error={self.error!r}, "
                f"message={self.message!r}, field={self.field!r})")


class BadRequestError(APIError):
    """400: the request body is not valid JSON (or not an object)."""


class AuthenticationError(APIError):
    """401: the API key is missing, unknown or revoked."""


class TenantSuspendedError(APIError):
    """402: the tenant is suspended."""


class PermissionDeniedError(APIError):
    """403: the key lacks the scope the endpoint needs."""


class NotFoundError(APIError):
    """404: an unknown id, or another tenant's resource."""


class ConflictError(APIError):
    """409: a duplicate resource, or an idempotency key reused with another body or still in flight."""


class ValidationError(APIError):
    """422: the request is well-formed but invalid; ``field`` names what is wrong."""


class RateLimitError(APIError):
    """429: the key's rate limit or the tenant's quota; ``retry_after`` is in seconds (or None)."""

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"))


class ServiceUnavailableError(APIError):
    """503: a dependency of Postwire is down; nothing was changed and the request may be retried."""

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"))


class InternalServerError(APIError):
    """Any other 5xx."""


class APIConnectionError(PostwireError):
    """No answer: the connection failed or broke (after the retries the request allowed)."""


class APITimeoutError(APIConnectionError):
    """No answer within the timeout (after the retries the request allowed)."""


class ResponseDecodeError(PostwireError):
    """A 2xx answer whose body does not have the documented shape."""


class WebhookVerificationError(PostwireError):
    """A webhook's signature, timestamp or headers do not check out; do not trust its body."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: TenantSuspendedError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


class _ErrorBody(msgspec.Struct, kw_only=True):
    error: str = "error"
    message: str = ""
    code: int | None = None
    field: str | None = None


_error_decoder = msgspec.json.Decoder(_ErrorBody)


def error_from_response(response: httpx.Response) -> APIError:
    """The :class:`APIError` subclass for an error answer, with the SPEC body's fields."""
    status = response.status_code
    cls = _BY_STATUS.get(status) or (InternalServerError if status >= 500 else APIError)
    content = response.content
    try:
        parsed = _error_decoder.decode(content)
        body: Any = msgspec.json.decode(content)
    except (msgspec.DecodeError, msgspec.ValidationError):
        text = content.decode("utf-8", "replace").strip()
        parsed = _ErrorBody(error=_fallback_code(status), message=text[:500] or response.reason_phrase)
        body = text
    return cls(status, parsed.error, parsed.message, code=parsed.code, field=parsed.field, body=body,
               headers=response.headers)


def _fallback_code(status: int) -> str:
    return {429: "rate_limited", 503: "service_unavailable", 502: "bad_gateway",
            504: "gateway_timeout"}.get(status, "http_error")


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
