"""Settings from environment variables, validated once at start-up.

Each service declares a frozen Struct; a field ``amqp_url`` is filled from ``AMQP_URL``. Nothing reads the
environment at import time. A bad or missing value fails with the variable's name.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

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
    # seconds an idle keep-alive connection stays open; longer than the idle timeout of the load
    # balancers in front (60 s is common), so a client never sends on a connection being closed
    http_keep_alive_seconds: int = 75
    log_level: str = "INFO"
    log_json: bool = True
    shutdown_timeout: float = 15.0
    prefetch: int = 100
    service_name: str = "postwire"
    # base64 32-byte keys, first one encrypts (postwire_platform.secrets_at_rest); empty: services that
    # store secrets refuse to start
    secret_keys: list[str] = []
    # "quorum" on Kubernetes (replicated queues); every service of an installation must agree
    amqp_queue_type: Literal["classic", "quorum"] = "classic"
    # seconds between passive declares measuring queue depth and dead letters; 0 turns it off
    queue_metrics_interval: float = 15.0
    # a request body larger than this is refused with 413 before authentication or routing
    max_body_bytes: Annotated[int, msgspec.Meta(gt=0)] = 1_000_000


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
    """Containers and Structs (e.g. a routing table) come as JSON text in their variable."""
    origin = getattr(tp, "__origin__", None)
    if origin in (dict, list) or tp in (dict, list) or _is_struct(tp):
        return True
    args = getattr(tp, "__args__", ())
    return any(getattr(a, "__origin__", None) in (dict, list) or _is_struct(a) for a in args)


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)
