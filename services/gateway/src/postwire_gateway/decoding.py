"""Request bodies and query parameters decoded by hand, so every failure is in the SPEC's format.

Litestar's own body parsing answers its own way; msgspec tells us which field failed, and we name it on
the HTTP API (camelCase, as the client spelled it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from postwire_platform.errors import ApiError

T = TypeVar("T", bound=msgspec.Struct)

_AT_PATH = re.compile(r" - at `\$\.([A-Za-z0-9_]+)")
_AT_KEY = re.compile(r" - at `key` in `\$\.([A-Za-z0-9_]+)")
_MISSING = re.compile(r"missing required field `([A-Za-z0-9_]+)`")
_UNKNOWN = re.compile(r"unknown field `([A-Za-z0-9_]+)`")


def decode_body(raw: bytes, body_type: type[T]) -> T:
    """Decode a JSON request body: 400 ``invalid_json`` if malformed, 422 with ``field`` if invalid."""
    try:
        return msgspec.json.decode(raw, type=body_type)
    except msgspec.ValidationError as exc:
        raise validation_error(str(exc)) from None
    except msgspec.DecodeError:
        raise ApiError(400, "invalid_json", "the request body is not valid JSON") from None


def validation_error(text: str) -> ApiError:
    """The 422 for one msgspec validation message, naming the offending top-level field."""
    for pattern in (_AT_KEY, _AT_PATH, _MISSING, _UNKNOWN):
        match = pattern.search(text)
        if match:
            field = match.group(1)
            reason = text.split(" - at ", 1)[0]
            if pattern is _AT_KEY:
                reason = f"a key of {field}: {reason}"
            return ApiError(422, "validation_error", f"{field}: {reason}", field=field)
    # no field to name: the document itself is not an object
    return ApiError(400, "invalid_json", f"the request body must be a JSON object ({text})")


def int_param(query: Mapping[str, Any], name: str, *, default: int, minimum: int,
              maximum: int | None = None) -> int:
    """An integer query parameter within bounds, or 422 naming it."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(str(raw))
    except ValueError:
        raise ApiError(422, "validation_error", f"{name} must be an integer", field=name) from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ApiError(422, "validation_error", f"{name} must be {bounds}", field=name)
    return value


def choice_param(query: Mapping[str, Any], name: str, choices: tuple[str, ...]) -> str | None:
    """An optional query parameter that must be one of ``choices``, or 422 naming it."""
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    value = str(raw)
    if value not in choices:
        raise ApiError(422, "validation_error", f"{name} must be one of {', '.join(choices)}",
                       field=name)
    return value
