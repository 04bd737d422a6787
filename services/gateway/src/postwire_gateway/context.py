"""The gateway's per-process state, reachable from every handler through ``app.state.gateway``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request

from postwire_platform.clock import Clock
from postwire_platform.secrets_at_rest import Keyring
from postwire_platform.service import Runtime

from .accept import Acceptor
from .auth import Authenticator
from .idempotency import Idempotency
from .outbox import OutboxRelay
from .published import PublishedMarker
from .ratelimit import RateLimiter
from .senders import SenderIds
from .settings import GatewaySettings


@dataclass
class Gateway:
    """Connected clients plus the gateway's caches and background workers."""

    runtime: Runtime
    settings: GatewaySettings
    clock: Clock
    auth: Authenticator
    senders: SenderIds
    marker: PublishedMarker
    outbox: OutboxRelay
    acceptor: Acceptor
    idempotency: Idempotency
    keyring: Keyring

    @classmethod
    def create(cls, runtime: Runtime, settings: GatewaySettings, clock: Clock) -> Gateway:
        """Wire the gateway's parts around ``runtime`` (nothing connects until the lifespan runs)."""
        marker = PublishedMarker(runtime, delay=min(settings.published_mark_delay_seconds,
                                                    settings.outbox_grace_seconds / 2))
        return cls(
            runtime=runtime,
            settings=settings,
            clock=clock,
            auth=Authenticator(runtime, ttl=settings.auth_cache_seconds, limiter=RateLimiter(
                runtime, per_minute=settings.rate_limit_per_minute,
                per_second=settings.rate_limit_per_second)),
            senders=SenderIds(runtime, ttl=settings.auth_cache_seconds),
            marker=marker,
            outbox=OutboxRelay(runtime, clock=clock, grace=settings.outbox_grace_seconds,
                               interval=settings.outbox_interval_seconds),
            acceptor=Acceptor(runtime, marker),
            idempotency=Idempotency(runtime, clock),
            keyring=Keyring(settings.secret_keys),  # SettingsError without SECRET_KEYS
        )

    async def start(self) -> None:
        """Start the background workers (called once MongoDB and RabbitMQ are connected)."""
        await self.marker.start()
        await self.outbox.start()

    async def stop(self) -> None:
        """Stop the workers, flushing pending published marks."""
        await self.outbox.stop()
        await self.marker.stop()


def gateway_of(request: Request[Any, Any, Any]) -> Gateway:
    """The Gateway of the app serving ``request``."""
    gateway: Gateway = request.app.state.gateway
    return gateway
