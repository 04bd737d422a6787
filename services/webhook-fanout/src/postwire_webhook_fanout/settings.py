"""Settings of webhook-fanout."""

from __future__ import annotations

import msgspec

from postwire_platform.settings import CommonSettings

DEFAULT_RETRY_DELAYS: list[float] = [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
"""Seconds before attempts 2…10: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h."""


class Settings(CommonSettings, frozen=True, kw_only=True):
    """webhook-fanout's settings: the common ones plus delivery timeout and retry schedule."""

    service_name: str = "webhook-fanout"
    http_port: int = 8085
    webhook_timeout: float = 15.0
    """Seconds a customer endpoint has to answer one attempt."""
    webhook_retry_delays: list[float] = msgspec.field(
        default_factory=lambda: list(DEFAULT_RETRY_DELAYS))
    """Delays before each retry; one attempt plus one per delay in all."""
    webhook_allow_private: bool = True
    """Allow delivery to loopback and private addresses (the SSRF guard is not built yet)."""
    endpoint_cache_seconds: float = 1.0
    """How long a tenant's enabled endpoints are cached."""
    retry_pause: float = 1.0
    """Pause before a notification that could not be handled (database down) is handed back."""
