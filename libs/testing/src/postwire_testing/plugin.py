"""pytest fixtures over real services. Loaded by the repository's root conftest."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_platform.mongo import Document, make_client

from .servers import mongodb_server, rabbit_vhost


@pytest.fixture(scope="session")
def mongodb_url() -> Iterator[str]:
    """A MongoDB-wire server for the whole session (each test takes its own database)."""
    with mongodb_server() as url:
        yield url


@pytest.fixture(scope="module")
def amqp_url() -> Iterator[str]:
    """A RabbitMQ vhost of this test module's own (``AMQP_URL`` when set)."""
    base = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    with rabbit_vhost(base) as url:
        yield url


@pytest.fixture
def db_name() -> str:
    return f"pwtest_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def mongo(mongodb_url: str) -> AsyncIterator[AsyncMongoClient[Document]]:
    client = make_client(mongodb_url)
    yield client
    await client.close()


@pytest.fixture
async def db(mongo: AsyncMongoClient[Document], db_name: str) -> AsyncIterator[AsyncDatabase[Document]]:
    """A fresh database, dropped afterwards."""
    yield mongo[db_name]
    await mongo.drop_database(db_name)
