"""MongoDB: the client factory, collection names and indexes.

Works unchanged on MongoDB and on SecantusDB (tests, ``make run``); the URL decides ``retryWrites``.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

TENANTS = "tenants"
API_KEYS = "api_keys"
SENDER_IDS = "sender_ids"
MESSAGES = "messages"
EVENTS = "events"
DISPATCHES = "dispatches"
WEBHOOK_ENDPOINTS = "webhook_endpoints"
WEBHOOK_ATTEMPTS = "webhook_attempts"

INDEXES: dict[str, list[IndexModel]] = {
    API_KEYS: [IndexModel([("hash", ASCENDING)], unique=True),
               IndexModel([("tenant_id", ASCENDING)])],
    SENDER_IDS: [IndexModel([("tenant_id", ASCENDING), ("sender_id", ASCENDING)], unique=True)],
    MESSAGES: [
        IndexModel([("tenant_id", ASCENDING), ("channel", ASCENDING), ("accepted_at", DESCENDING)]),
        IndexModel([("provider_message_id", ASCENDING)], sparse=True),
        IndexModel([("published", ASCENDING), ("accepted_at", ASCENDING)], sparse=True),
    ],
    EVENTS: [IndexModel([("message_id", ASCENDING)]),
             IndexModel([("unmatched_provider_id", ASCENDING)], sparse=True)],
    WEBHOOK_ENDPOINTS: [IndexModel([("tenant_id", ASCENDING)])],
    WEBHOOK_ATTEMPTS: [IndexModel([("tenant_id", ASCENDING), ("message_id", ASCENDING)])],
}

Document = dict[str, Any]


def make_client(url: str, *, timeout_ms: int = 5000) -> AsyncMongoClient[Document]:
    """An async client with bounded timeouts, so a dead server turns into a fast 503."""
    return AsyncMongoClient(
        url,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=max(timeout_ms * 2, 10000),
    )


async def ensure_indexes(db: AsyncDatabase[Document], collections: list[str]) -> None:
    """Create the indexes of the named collections (idempotent)."""
    for name in collections:
        models = INDEXES.get(name)
        if models:
            await db[name].create_indexes(models)


async def ping(client: AsyncMongoClient[Document]) -> bool:
    """True when the server answers."""
    try:
        await client.admin.command("ping")
    except Exception:  # readiness reports, it does not raise
        return False
    return True
