"""Settings of the reporting service."""

from __future__ import annotations

from postwire_platform.settings import CommonSettings


class Settings(CommonSettings, frozen=True, kw_only=True):
    """Reporting's settings: the common ones plus the micro-batcher's knobs."""

    service_name: str = "reporting"
    http_port: int = 8086
    prefetch: int = 400
    """Unacked deliveries in flight: twice ``batch_max``, so the next batch fills while one is written."""
    batch_max: int = 200
    """Most events written in one batch."""
    batch_wait_ms: int = 20
    """How long the first event of a batch waits for company before the batch is written."""
    notify_batches: bool = True
    """Publish a batch's status changes per channel as one ``StatusChanges`` (False: one
    ``StatusChanged`` each, for a rolling upgrade whose webhook-fanout and gateways do not read
    batches yet)."""
    retry_pause: float = 1.0
    """Pause before a delivery whose batch failed transiently is handed back to RabbitMQ."""
