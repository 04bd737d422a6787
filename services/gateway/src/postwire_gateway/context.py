"""The gateway's per-process state, reachable from every handler through ``app.state.gateway``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request

from postwire_platform.clock import Clock
from postwire_platform.service import Runtime

from .auth import Authenticator
from .outbox import OutboxRelay
from .published import PublishedMarker
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

    @classmethod
    def create(cls, runtime: Runtime, settings: GatewaySettings, clock: Clock) -> Gateway:
        """Wire the gateway's parts around ``runtime`` (nothing connects until the lifespan runs)."""
        return cls(
            runtime=runtime,
            settings=settings,
            clock=clock,
            auth=Authenticator(runtime, ttl=settings.auth_cache_seconds),
            senders=SenderIds(runtime, ttl=settings.auth_cache_seconds),
            marker=PublishedMarker(runtime),
            outbox=OutboxRelay(runtime, clock=clock, grace=settings.outbox_grace_seconds,
                               interval=settings.outbox_interval_seconds),
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
