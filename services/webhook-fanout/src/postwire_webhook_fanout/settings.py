"""Settings of webhook-fanout."""

from __future__ import annotations

import msgspec

from postwire_platform.settings import CommonSettings, SettingsError

DEFAULT_RETRY_DELAYS: list[float] = [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
"""Seconds before attempts 2…10: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h (Standard
Webhooks' schedule; the first attempt is immediate)."""


class Settings(CommonSettings, frozen=True, kw_only=True):
    """webhook-fanout's settings: the common ones plus delivery, isolation and ordering knobs."""

    service_name: str = "webhook-fanout"
    http_port: int = 8085
    webhook_timeout: float = 15.0
    """Seconds a customer endpoint has to answer one attempt."""
    webhook_retry_delays: list[float] = msgspec.field(
        default_factory=lambda: list(DEFAULT_RETRY_DELAYS))
    """Delays before each retry; one attempt plus one per delay in all. Each is a delay queue."""
    webhook_retry_jitter: float = 0.1
    """Each scheduled delay is shortened by a random fraction up to this, so retries spread out."""
    webhook_allow_private: bool = False
    """Allow delivery to loopback, private and other non-public addresses (``make run`` does)."""
    webhook_endpoint_concurrency: int = 10
    """Attempts in flight to one endpoint per replica; further jobs for it wait in a delay queue."""
    webhook_breaker_threshold: int = 5
    """Consecutive failures (no answer, timeout, 5xx) that open an endpoint's circuit breaker."""
    webhook_breaker_cooldown: float = 30.0
    """Seconds an open breaker skips attempts before one probe is let through."""
    webhook_busy_wait: float = 0.5
    """How long a job waits in memory for a slot of an endpoint at its concurrency limit before it is
    set aside (at most WEBHOOK_BUSY_WAITERS jobs wait per endpoint); 0 turns it off."""
    webhook_busy_waiters: int = 40
    """Jobs that may wait in memory for one quick but busy endpoint (per replica), each holding a
    consumer slot for at most WEBHOOK_BUSY_WAIT; the next ones are set aside for
    WEBHOOK_DEFER_SECONDS. Keep it and WEBHOOK_ENDPOINT_CONCURRENCY well under PREFETCH."""
    webhook_inline_attempts: int = 50
    """First attempts made straight from the notification consumer at once, for endpoints that are
    quick (their last attempt answered without failure faster than WEBHOOK_BUSY_WAIT) and have a free
    slot; every other first attempt goes through the job queue. 0 sends every one through the queue."""
    webhook_defer_seconds: float = 2.0
    """Delay before a job set aside (endpoint at its limit, earlier event not attempted yet) returns."""
    webhook_order_wait: float = 20.0
    """How long an event waits for the earlier events of its message to be attempted first."""
    webhook_order_inline_wait: float = 1.0
    """Of that, how long a job waits in memory (holding its consumer slot) for an earlier event being
    attempted in this process, before it is set aside through the defer queue; 0 turns it off."""
    webhook_attempt_retention_days: float = 30.0
    """How long attempt records (and so replays) are kept."""
    webhook_attempt_sweep_seconds: float = 60.0
    """How often expired attempt records are deleted (a ranged delete on their ``expires_at``)."""
    endpoint_cache_seconds: float = 1.0
    """How long a tenant's enabled endpoints are cached."""
    retry_pause: float = 1.0
    """Pause before a message that could not be handled (database down) is handed back."""
    attempt_flush_seconds: float = 0.02
    """Attempt records are written in batches gathered over at most this long."""

    def declared_delays(self) -> list[float]:
        """Every delay queue of ``webhook-fanout.deliver``: the schedule's steps and the defer step."""
        return sorted({*self.webhook_retry_delays, self.webhook_defer_seconds})


def validate(settings: Settings) -> None:
    """Refuse settings that would misbehave at run time, naming the variable."""
    checks = [
        ("WEBHOOK_RETRY_DELAYS", all(d > 0 for d in settings.webhook_retry_delays),
         "every delay must be > 0"),
        ("WEBHOOK_RETRY_JITTER", 0 <= settings.webhook_retry_jitter < 1, "must be in [0, 1)"),
        ("WEBHOOK_TIMEOUT", settings.webhook_timeout > 0, "must be > 0"),
        ("WEBHOOK_ENDPOINT_CONCURRENCY", settings.webhook_endpoint_concurrency >= 1, "must be >= 1"),
        ("WEBHOOK_BREAKER_THRESHOLD", settings.webhook_breaker_threshold >= 1, "must be >= 1"),
        ("WEBHOOK_BREAKER_COOLDOWN", settings.webhook_breaker_cooldown > 0, "must be > 0"),
        ("WEBHOOK_DEFER_SECONDS", settings.webhook_defer_seconds > 0, "must be > 0"),
        ("WEBHOOK_BUSY_WAIT", settings.webhook_busy_wait >= 0, "must be >= 0"),
        ("WEBHOOK_BUSY_WAITERS", settings.webhook_busy_waiters >= 0, "must be >= 0"),
        ("WEBHOOK_INLINE_ATTEMPTS", settings.webhook_inline_attempts >= 0, "must be >= 0"),
        ("WEBHOOK_ORDER_WAIT", settings.webhook_order_wait >= 0, "must be >= 0"),
        ("WEBHOOK_ORDER_INLINE_WAIT", settings.webhook_order_inline_wait >= 0, "must be >= 0"),
        ("WEBHOOK_ATTEMPT_RETENTION_DAYS", settings.webhook_attempt_retention_days > 0,
         "must be > 0"),
        ("WEBHOOK_ATTEMPT_SWEEP_SECONDS", settings.webhook_attempt_sweep_seconds > 0, "must be > 0"),
    ]
    for var, ok, why in checks:
        if not ok:
            raise SettingsError(f"{var}: {why}")
