"""Settings from environment variables, validated once at start-up.

Each service declares a frozen Struct; a field ``amqp_url`` is filled from ``AMQP_URL``. Nothing reads the
environment at import time. A bad or missing value fails with the variable's name.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

T = TypeVar("T", bound=msgspec.Struct)


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the environment variable."""


class CommonSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What every service needs: where the broker and MongoDB are, and where to serve HTTP."""

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    mongodb_url: str = "mongodb://127.0.0.1:27017/?retryWrites=false"
    mongodb_database: str = "postwire"
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    log_level: str = "INFO"
    log_json: bool = True
    shutdown_timeout: float = 15.0
    prefetch: int = 100
    service_name: str = "postwire"


_PATH = re.compile(r"at `\$\.(\w+)")
_MISSING = re.compile(r"missing required field `(\w+)`")


def load_settings(cls: type[T], env: Mapping[str, str] | None = None) -> T:
    """Build ``cls`` from ``env`` (default: ``os.environ``), naming the variable on any error."""
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    for field in msgspec.structs.fields(cls):
        var = field.name.upper()
        if var not in env:
            continue
        raw = env[var]
        if _wants_json(field.type):
            try:
                data[field.name] = json.loads(raw) if raw.strip() else None
            except json.JSONDecodeError as exc:
                raise SettingsError(f"{var}: not valid JSON ({exc.msg})") from None
        else:
            data[field.name] = raw
    try:
        return msgspec.convert(data, cls, strict=False)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _PATH.search(text) or _MISSING.search(text)
        var = match.group(1).upper() if match else "?"
        raise SettingsError(f"{var}: {text.split(' - at ')[0]}") from None


def _wants_json(tp: Any) -> bool:
    origin = getattr(tp, "__origin__", None)
    if origin in (dict, list) or tp in (dict, list):
        return True
    args = getattr(tp, "__args__", ())
    return any(getattr(a, "__origin__", None) in (dict, list) for a in args)
