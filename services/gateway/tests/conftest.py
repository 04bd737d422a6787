"""Fixtures: a gateway app against the real RabbitMQ vhost and SecantusDB, a tenant, the send queue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts import topology
from postwire_gateway.app import create_app
from postwire_gateway.settings import GatewaySettings
from postwire_platform.mongo import Document
from postwire_platform.secrets_at_rest import generate_key

from .gateway_support import SendQueue, Tenant, make_tenant


@pytest.fixture
def settings(amqp_url: str, mongodb_url: str, db_name: str) -> GatewaySettings:
    return GatewaySettings(amqp_url=amqp_url, mongodb_url=mongodb_url, mongodb_database=db_name,
                           log_json=False, whatsapp_cloud_api_enabled=True,
                           secret_keys=[generate_key()])


@pytest.fixture
def app(settings: GatewaySettings) -> Litestar:
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar, db: AsyncDatabase[Document]) -> AsyncIterator[AsyncTestClient[Any]]:
    """The running gateway (lifespan included); ``db`` is its database, dropped afterwards."""
    async with AsyncTestClient(app) as test_client:
        yield test_client


@pytest.fixture
async def tenant(db: AsyncDatabase[Document]) -> Tenant:
    return await make_tenant(db)


@pytest.fixture
async def send_queue(client: AsyncTestClient[Any], amqp_url: str) -> AsyncIterator[SendQueue]:
    """The send queue, purged (the vhost is shared by the module's tests)."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(topology.SMS_SEND_QUEUE, ensure=True)
        otp_lane = await channel.get_queue(topology.SMS_OTP_QUEUE, ensure=True)
        await queue.purge()
        await otp_lane.purge()
        yield SendQueue(queue, otp_lane)
    finally:
        await connection.close()


