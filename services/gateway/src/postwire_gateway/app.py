"""The gateway's Litestar app: routes, the shared lifespan, and the background workers."""

from __future__ import annotations

from litestar import Litestar

from postwire_platform.clock import Clock, utcnow
from postwire_platform.mongo import (
    API_KEYS,
    DOMAINS,
    IDEMPOTENCY_KEYS,
    MESSAGES,
    OPT_OUTS,
    SENDER_IDS,
    SUPPRESSIONS,
    TEMPLATE_VERSIONS,
    TEMPLATES,
    TENANTS,
    WEBHOOK_ATTEMPTS,
    WEBHOOK_ENDPOINTS,
)
from postwire_platform.secrets_at_rest import Keyring
from postwire_platform.service import Runtime, build_app, new_broker

from .api_keys import API_KEY_ROUTES
from .channels import ChannelSpec
from .context import Gateway
from .domains import DOMAIN_ROUTES
from .email_channel import EmailChannel
from .email_services import EmailServices
from .lists import LIST_ROUTES
from .openapi import openapi_json
from .ratelimit import headers_middleware
from .reads import read_routes
from .sender_id_routes import SENDER_ID_ROUTES
from .sends import batch_route, send_route
from .settings import GatewaySettings
from .sms_channel import SmsChannel
from .stats import STATS_ROUTES
from .stream import attach_stream
from .templates import TEMPLATE_ROUTES
from .webhook_deliveries import WEBHOOK_DELIVERY_ROUTES
from .webhook_endpoints import WEBHOOK_ENDPOINT_ROUTES
from .whatsapp_channel import WhatsAppChannel
from .whatsapp_conversations import CONVERSATION_ROUTES
from .whatsapp_line import WHATSAPP_LINE_ROUTES

CHANNELS: list[ChannelSpec] = [EmailChannel(), SmsChannel(), WhatsAppChannel()]

ROUTES = [
    *CONVERSATION_ROUTES,  # before the channel reads: /v1/whatsapp/conversations is not a message id
    *WHATSAPP_LINE_ROUTES,
    *(route for spec in CHANNELS for route in (send_route(spec), batch_route(spec), *read_routes(spec))),
    *API_KEY_ROUTES,
    *SENDER_ID_ROUTES,
    *LIST_ROUTES,
    openapi_json,
    *WEBHOOK_ENDPOINT_ROUTES,
    *WEBHOOK_DELIVERY_ROUTES,
    *TEMPLATE_ROUTES,
    *DOMAIN_ROUTES,
    *STATS_ROUTES,
]


def create_app(settings: GatewaySettings, *, clock: Clock | None = None) -> Litestar:
    """The gateway app; connecting MongoDB and RabbitMQ happens in its lifespan."""
    runtime = Runtime(settings=settings, broker=new_broker(settings))
    gateway = Gateway.create(runtime, settings, clock or utcnow)
    EmailServices.create(runtime, settings)  # SECRET_KEYS is required: DKIM keys are sealed

    async def start_workers(_: Runtime) -> None:
        await gateway.start()

    async def stop_workers(_: Runtime) -> None:
        await gateway.stop()

    app: Litestar = build_app(
        runtime,
        route_handlers=ROUTES,
        collections=[TENANTS, API_KEYS, SENDER_IDS, MESSAGES, WEBHOOK_ENDPOINTS, IDEMPOTENCY_KEYS,
                     OPT_OUTS, SUPPRESSIONS, TEMPLATES, TEMPLATE_VERSIONS, DOMAINS,
                     WEBHOOK_ATTEMPTS],
        on_start=[start_workers],
        on_stop=[stop_workers],
        request_max_body_size=settings.max_body_bytes,
        middleware=[headers_middleware],
    )
    app.state.gateway = gateway
    attach_stream(app, runtime, settings)
    app.state.whatsapp_keyring = Keyring(settings.secret_keys) if settings.secret_keys else None
    return app
