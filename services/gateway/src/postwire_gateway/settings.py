"""The gateway's settings, read from environment variables by ``postwire_platform.settings``."""

from __future__ import annotations

from postwire_platform.settings import CommonSettings


class GatewaySettings(CommonSettings, frozen=True, kw_only=True):
    """Common settings plus the outbox relay's timing, the request size cap and the auth cache."""

    service_name: str = "gateway"
    http_port: int = 8080
    outbox_grace_seconds: float = 10.0
    """A ``published: false`` message older than this is the outbox relay's to publish."""
    outbox_interval_seconds: float = 2.0
    """How often the outbox relay looks for unpublished messages."""
    max_body_bytes: int = 1_000_000
    """Larger request bodies are refused with 413."""
    auth_cache_seconds: float = 5.0
    """How long an API key (and an approved sender id) is trusted without asking MongoDB again."""
