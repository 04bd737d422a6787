"""email-dispatcher test kit: settings, a running app, commands, a verified sending domain."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts.messages import SendEmail
from postwire_email_dispatcher.app import create_app
from postwire_email_dispatcher.settings import Settings
from postwire_email_dispatcher.transport import Accepted, Outgoing, RelayTransport
from postwire_platform.clock import utcnow
from postwire_platform.ids import new_id
from postwire_platform.mongo import DOMAINS, Document
from postwire_platform.secrets_at_rest import Keyring, generate_key

SECRET_KEY = generate_key()


def make_settings(amqp_url: str, mongodb_url: str, db_name: str, **overrides: Any) -> Settings:
    """Settings for a test: short lease and retries, a fresh secret key."""
    values: dict[str, Any] = {
        "amqp_url": amqp_url, "mongodb_url": mongodb_url, "mongodb_database": db_name,
        "dispatch_lease_seconds": 1.0, "email_retry_delays": [0.2, 0.4], "shutdown_timeout": 5.0,
        "sandbox_feedback_delay": 0.05, "email_smtp_timeout": 5.0, "secret_keys": [SECRET_KEY],
        "log_json": False, "domain_cache_seconds": 0.0,
    }
    values.update(overrides)
    return Settings(**values)


def relay_settings(amqp_url: str, mongodb_url: str, db_name: str, port: int,
                   **overrides: Any) -> Settings:
    """Settings delivering to a local sink without TLS or auth (override to add them)."""
    values: dict[str, Any] = {"email_relay_host": "127.0.0.1", "email_relay_port": port,
                              "email_relay_tls": "none"}
    values.update(overrides)
    return make_settings(amqp_url, mongodb_url, db_name, **values)


@asynccontextmanager
async def running(settings: Settings, **kwargs: Any) -> AsyncIterator[Litestar]:
    """The dispatcher app with its lifespan running; ready once entered."""
    app = create_app(settings, **kwargs)
    async with AsyncTestClient(app) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        yield app


def command(to: str = "ada@example.com", *, live: bool = True, **overrides: Any) -> SendEmail:
    """A fresh SendEmail with a new message id."""
    values: dict[str, Any] = {
        "message_id": new_id(), "tenant_id": "ten_test", "live": live,
        "from_address": "Shop <receipts@shop.example>", "to": [to], "subject": "Your receipt",
        "html": '<html><body><p style="color: red;">Thanks, Ada</p>'
                '<a href="https://shop.example/orders/42?x=1&amp;y=2">Order</a></body></html>',
        "text": "Thanks, Ada", "accepted_at": utcnow(),
    }
    values.update(overrides)
    return SendEmail(**values)


@dataclass(frozen=True)
class Domain:
    id: str
    domain: str
    selector: str
    dns_txt: bytes
    """The DKIM TXT record value as a resolver returns it."""


async def verified_domain(db: AsyncDatabase[Document], domain: str = "shop.example", *,
                          tenant_id: str = "ten_test", selector: str = "pw1") -> Domain:
    """A verified sending domain with a sealed 2048-bit DKIM key, as the gateway stores one."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    domain_id = new_id("dom_")
    sealed = Keyring([SECRET_KEY]).encrypt(pem, context=f"domains.dkim_private_key:{domain_id}")
    await db[DOMAINS].insert_one({
        "_id": domain_id, "tenant_id": tenant_id, "domain": domain, "status": "verified",
        "dkim_selector": selector, "dkim_private_key": sealed,
        "return_path_domain": f"pwbounces.{domain}", "return_path_verified": True,
        "created_at": utcnow()})
    txt = f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}".encode()
    return Domain(domain_id, domain, selector, txt)


class GatedRelay:
    """The real relay transport, held at the door until the test lets the transaction through."""

    name = "relay"

    def __init__(self, inner: RelayTransport) -> None:
        self.inner = inner
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def deliver(self, outgoing: Outgoing) -> Accepted:
        self.entered.set()
        await self.gate.wait()
        return await self.inner.deliver(outgoing)

    async def aclose(self) -> None:
        await self.inner.aclose()
