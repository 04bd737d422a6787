"""MongoDB: the client factory, collection names and indexes.

Works unchanged on MongoDB and on SecantusDB (tests, ``make run``); the URL decides ``retryWrites``.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

TENANTS = "tenants"
API_KEYS = "api_keys"
SENDER_IDS = "sender_ids"
MESSAGES = "messages"
EVENTS = "events"
DISPATCHES = "dispatches"
WEBHOOK_ENDPOINTS = "webhook_endpoints"
WEBHOOK_ATTEMPTS = "webhook_attempts"
OPT_OUTS = "opt_outs"
SUPPRESSIONS = "suppressions"
IDEMPOTENCY_KEYS = "idempotency_keys"
RATE_LIMITS = "rate_limits"
TEMPLATES = "templates"
TEMPLATE_VERSIONS = "template_versions"
DOMAINS = "domains"
EMAIL_DISPATCHES = "email_dispatches"
STATS_DAILY = "stats_daily"
CONVERSATIONS = "conversations"
WHATSAPP_DISPATCHES = "whatsapp_dispatches"

INDEXES: dict[str, list[IndexModel]] = {
    API_KEYS: [IndexModel([("hash", ASCENDING)], unique=True),
               IndexModel([("tenant_id", ASCENDING)])],
    SENDER_IDS: [IndexModel([("tenant_id", ASCENDING), ("sender_id", ASCENDING)], unique=True)],
    MESSAGES: [
        IndexModel([("tenant_id", ASCENDING), ("channel", ASCENDING), ("accepted_at", DESCENDING)]),
        IndexModel([("provider_message_id", ASCENDING)], sparse=True),
        IndexModel([("published", ASCENDING), ("accepted_at", ASCENDING)], sparse=True),
        # provider-ingest: which tenants wrote to a handset (an inbound STOP applies to them)
        IndexModel([("to", ASCENDING), ("channel", ASCENDING), ("accepted_at", DESCENDING)]),
    ],
    EVENTS: [IndexModel([("message_id", ASCENDING)]),
             IndexModel([("unmatched_provider_id", ASCENDING)], sparse=True)],
    WEBHOOK_ENDPOINTS: [IndexModel([("tenant_id", ASCENDING)])],
    DISPATCHES: [IndexModel([("part_keys", ASCENDING)], sparse=True)],
    TENANTS: [IndexModel([("whatsapp_line.phone_number_id", ASCENDING)], unique=True, sparse=True)],
    OPT_OUTS: [IndexModel([("tenant_id", ASCENDING), ("channel", ASCENDING), ("address", ASCENDING)],
                          unique=True)],
    RATE_LIMITS: [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0)],
    IDEMPOTENCY_KEYS: [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0)],
    SUPPRESSIONS: [IndexModel([("tenant_id", ASCENDING), ("email", ASCENDING)], unique=True)],
    WEBHOOK_ATTEMPTS: [
        IndexModel([("tenant_id", ASCENDING), ("message_id", ASCENDING)]),
        IndexModel([("endpoint_id", ASCENDING), ("at", DESCENDING)]),
        IndexModel([("webhook_id", ASCENDING), ("at", DESCENDING)]),
        # each record carries its own expiry (the retention is a setting); webhook-fanout deletes
        # the expired ones itself through this index (``AttemptLog.expire``), not through a TTL
        # option: SecantusDB's TTL sweep decodes the whole collection under its global lock every
        # 60 s, a stall of every write that grows with the collection (docs/performance.md)
        IndexModel([("expires_at", ASCENDING)]),
    ],
    TEMPLATES: [IndexModel([("tenant_id", ASCENDING), ("name", ASCENDING)], unique=True)],
    TEMPLATE_VERSIONS: [IndexModel([("template_id", ASCENDING), ("version", ASCENDING)], unique=True)],
    DOMAINS: [IndexModel([("tenant_id", ASCENDING), ("domain", ASCENDING)], unique=True)],
    STATS_DAILY: [IndexModel([("tenant_id", ASCENDING), ("day", ASCENDING)])],
    CONVERSATIONS: [IndexModel([("tenant_id", ASCENDING), ("last_inbound_at", DESCENDING)])],
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
    """Create the indexes of the named collections (idempotent). An existing index on the same keys
    whose TTL option differs from its model's (one added or taken away in an upgrade) is dropped
    and made again: the server would refuse the model beside it."""
    for name in collections:
        models = INDEXES.get(name)
        if not models:
            continue
        existing = await db[name].index_information()
        for model in models:
            spec = model.document
            found = existing.get(spec["name"])
            if found is not None and found.get("expireAfterSeconds") != spec.get(
                    "expireAfterSeconds"):
                try:
                    await db[name].drop_index(spec["name"])
                except OperationFailure as exc:
                    if exc.code != 27:  # IndexNotFound: another service dropped it first
                        raise
        await db[name].create_indexes(models)


async def ping(client: AsyncMongoClient[Document]) -> bool:
    """True when the server answers."""
    try:
        await client.admin.command("ping")
    except Exception:  # readiness reports, it does not raise
        return False
    return True
