"""whatsapp-dispatcher test kit: settings, a running app, commands, a tenant's own line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts.messages import SendWhatsApp, WhatsAppTemplate
from postwire_platform.clock import utcnow
from postwire_platform.ids import new_id
from postwire_platform.mongo import TENANTS, Document
from postwire_platform.secrets_at_rest import Keyring, generate_key
from postwire_whatsapp_dispatcher.app import create_app
from postwire_whatsapp_dispatcher.settings import Settings

SECRET_KEY = generate_key()
PLATFORM_PHONE = "106540352242922"
PLATFORM_TOKEN = "EAAG-platform-token"


def make_settings(amqp_url: str, mongodb_url: str, db_name: str, graph_url: str,
                  **overrides: Any) -> Settings:
    """Settings for a test: the platform line on the fake Graph API, short lease and retries."""
    values: dict[str, Any] = {
        "amqp_url": amqp_url, "mongodb_url": mongodb_url, "mongodb_database": db_name,
        "whatsapp_cloud_api_enabled": True, "whatsapp_graph_url": graph_url,
        "whatsapp_phone_number_id": PLATFORM_PHONE, "whatsapp_access_token": PLATFORM_TOKEN,
        "secret_keys": [SECRET_KEY], "dispatch_lease_seconds": 2.0,
        "whatsapp_retry_delays": [0.2, 0.4], "whatsapp_pacing_delays": [0.5, 1.0, 5.0],
        "whatsapp_graph_timeout": 5.0, "whatsapp_line_cache_seconds": 0.0,
        "shutdown_timeout": 5.0, "log_json": False,
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running(settings: Settings, **kwargs: Any) -> AsyncIterator[Litestar]:
    """The dispatcher app with its lifespan running; ready once entered."""
    app = create_app(settings, **kwargs)
    async with AsyncTestClient(app) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        yield app


def command(to: str = "+14155552671", *, live: bool = True, tenant_id: str = "ten_test",
            **overrides: Any) -> SendWhatsApp:
    """A fresh text SendWhatsApp with a new message id."""
    values: dict[str, Any] = {
        "message_id": new_id(), "tenant_id": tenant_id, "live": live, "to": to,
        "text": "Your order has shipped", "accepted_at": utcnow(),
    }
    values.update(overrides)
    return SendWhatsApp(**values)


def template(name: str = "order_update", language: str = "en_US",
             *params: str) -> WhatsAppTemplate:
    return WhatsAppTemplate(name=name, language=language, body_parameters=list(params))


async def give_line(db: AsyncDatabase[Document], tenant_id: str, phone_number_id: str,
                    token: str | None) -> None:
    """Store a tenant's own line as the gateway does (the token sealed with SECRET_KEYS)."""
    line: Document = {"phone_number_id": phone_number_id, "updated_at": utcnow()}
    if token is not None:
        line["access_token"] = Keyring([SECRET_KEY]).encrypt(
            token, context=f"tenants.whatsapp_line.access_token:{tenant_id}")
    await db[TENANTS].update_one({"_id": tenant_id},
                                 {"$set": {"whatsapp_line": line, "name": tenant_id,
                                           "status": "active"}}, upsert=True)
