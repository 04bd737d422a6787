"""The gateway's Litestar app: routes, the shared lifespan, and the background workers."""

from __future__ import annotations

from litestar import Litestar

from postwire_platform.clock import Clock, utcnow
from postwire_platform.mongo import API_KEYS, MESSAGES, SENDER_IDS, TENANTS, WEBHOOK_ENDPOINTS
from postwire_platform.service import Runtime, build_app, new_broker

from .context import Gateway
from .settings import GatewaySettings
from .sms_read import get_sms, get_sms_timeline, list_sms
from .sms_send import send_sms
from .webhook_endpoints import (
    create_webhook_endpoint,
    delete_webhook_endpoint,
    list_webhook_endpoints,
)

ROUTES = [
    send_sms,
    get_sms,
    get_sms_timeline,
    list_sms,
    create_webhook_endpoint,
    list_webhook_endpoints,
    delete_webhook_endpoint,
]


def create_app(settings: GatewaySettings, *, clock: Clock | None = None) -> Litestar:
    """The gateway app; connecting MongoDB and RabbitMQ happens in its lifespan."""
    runtime = Runtime(settings=settings, broker=new_broker(settings))
    gateway = Gateway.create(runtime, settings, clock or utcnow)

    async def start_workers(_: Runtime) -> None:
        await gateway.start()

    async def stop_workers(_: Runtime) -> None:
        await gateway.stop()

    app: Litestar = build_app(
        runtime,
        route_handlers=ROUTES,
        collections=[TENANTS, API_KEYS, SENDER_IDS, MESSAGES, WEBHOOK_ENDPOINTS],
        on_start=[start_workers],
        on_stop=[stop_workers],
        request_max_body_size=settings.max_body_bytes,
    )
    app.state.gateway = gateway
    return app
