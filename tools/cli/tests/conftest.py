"""Fixtures: the real gateway (uvicorn in a thread, real RabbitMQ vhost and SecantusDB) and a tenant."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pymongo
import pytest
from litestar import Litestar
from pymongo import AsyncMongoClient

from postwire_gateway.app import create_app
from postwire_gateway.settings import GatewaySettings
from postwire_platform import tenancy
from postwire_platform.mongo import Document
from postwire_platform.secrets_at_rest import generate_key
from postwire_testing.servers import ThreadedServer

SENDER = "Postwire"


@dataclass
class Tenant:
    id: str
    key: str
    base_url: str


@pytest.fixture(scope="module")
def gateway_db() -> str:
    return f"pwcli_{uuid.uuid4().hex[:12]}"


OPTIONAL_SETTINGS: dict[str, Any] = {"whatsapp_cloud_api_enabled": True}
"""Settings the gateway has once the feature that reads them has landed (set when they exist)."""


@pytest.fixture(scope="module")
def gateway_app(amqp_url: str, mongodb_url: str, gateway_db: str) -> Litestar:
    known = {name: value for name, value in OPTIONAL_SETTINGS.items()
             if name in GatewaySettings.__struct_fields__}
    settings = GatewaySettings(amqp_url=amqp_url, mongodb_url=mongodb_url, mongodb_database=gateway_db,
                               log_json=False, secret_keys=[generate_key()], **known)
    return create_app(settings)


@pytest.fixture(scope="module")
def served(gateway_app: Litestar) -> set[str]:
    """The paths this gateway serves (the live stream lands with another helper's work)."""
    return {route.path for route in gateway_app.routes}


@pytest.fixture(scope="module")
def gateway_url(gateway_app: Litestar, mongodb_url: str, gateway_db: str) -> Iterator[str]:
    with ThreadedServer(gateway_app) as server:
        yield server.url
    with pymongo.MongoClient(mongodb_url) as client:
        client.drop_database(gateway_db)


@pytest.fixture
async def tenant(mongo: AsyncMongoClient[Document], gateway_db: str, gateway_url: str) -> Tenant:
    """A tenant with an all-scopes key (no practical rate limit) and the sender id ``Postwire``."""
    db = mongo[gateway_db]
    doc = await tenancy.create_tenant(db, "CLI test")
    key, _ = await tenancy.create_key(db, doc["_id"], list(tenancy.TENANT_SCOPES), mode="test",
                                      rate_limit=(1_000_000, 100_000))
    await tenancy.approve_sender_id(db, doc["_id"], SENDER)
    return Tenant(doc["_id"], key, gateway_url)


@pytest.fixture
def no_postwire_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The developer's own POSTWIRE_* variables and .postwire/dev.json must not leak into the tests."""
    monkeypatch.delenv("POSTWIRE_API_KEY", raising=False)
    monkeypatch.delenv("POSTWIRE_BASE_URL", raising=False)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
