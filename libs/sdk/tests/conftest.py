"""Fixtures: the real gateway (uvicorn in a thread, real RabbitMQ vhost and SecantusDB) and a tenant.

The gateway serves the whole module; each test makes a tenant of its own in its database, so tests do
not see each other's messages.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pymongo
import pytest
from litestar import Litestar
from pymongo import AsyncMongoClient

from postwire_gateway.app import create_app
from postwire_gateway.settings import GatewaySettings
from postwire_platform.mongo import Document
from postwire_platform.secrets_at_rest import generate_key
from postwire_testing.servers import ThreadedServer

from .sdk_support import Tenant, make_tenant


@pytest.fixture(scope="module")
def gateway_db() -> str:
    return f"pwsdk_{uuid.uuid4().hex[:12]}"


OPTIONAL_SETTINGS: dict[str, Any] = {
    "whatsapp_cloud_api_enabled": True,  # WhatsApp sends (off by default in a deployment)
    "webhook_allow_private": True,  # webhook endpoints on 127.0.0.1
}
"""Settings the gateway has once the feature that reads them has landed (set when they exist)."""


@pytest.fixture(scope="module")
def gateway_settings(amqp_url: str, mongodb_url: str, gateway_db: str) -> GatewaySettings:
    known = {name: value for name, value in OPTIONAL_SETTINGS.items()
             if name in GatewaySettings.__struct_fields__}
    return GatewaySettings(amqp_url=amqp_url, mongodb_url=mongodb_url, mongodb_database=gateway_db,
                           log_json=False, secret_keys=[generate_key()], **known)


@pytest.fixture(scope="module")
def gateway_app(gateway_settings: GatewaySettings) -> Litestar:
    return create_app(gateway_settings)


@pytest.fixture(scope="module")
def gateway_url(gateway_app: Litestar, mongodb_url: str, gateway_db: str) -> Iterator[str]:
    """The base URL of a running gateway."""
    with ThreadedServer(gateway_app) as server:
        yield server.url
    with pymongo.MongoClient(mongodb_url) as client:
        client.drop_database(gateway_db)


@pytest.fixture(scope="module")
def served(gateway_app: Litestar) -> set[str]:
    """The paths this gateway serves (features other helpers add land one by one)."""
    return {route.path for route in gateway_app.routes}


@pytest.fixture
async def tenant(mongo: AsyncMongoClient[Document], gateway_db: str,
                 gateway_url: str) -> AsyncIterator[Tenant]:
    yield await make_tenant(mongo[gateway_db], gateway_url)
