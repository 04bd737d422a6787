"""Operator commands that bootstrap a deployment, talking to MongoDB directly (``MONGODB_URL``)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from postwire_platform import tenancy
from postwire_platform.mongo import (
    API_KEYS,
    SENDER_IDS,
    TENANTS,
    Document,
    ensure_indexes,
    make_client,
)

DEFAULT_MONGODB_URL = "mongodb://127.0.0.1:27027/?retryWrites=false"


async def with_db(args: argparse.Namespace, action: Any) -> Any:
    url = args.mongodb_url or os.environ.get("MONGODB_URL") or DEFAULT_MONGODB_URL
    client = make_client(url)
    try:
        db: AsyncDatabase[Document] = client[args.database]
        await ensure_indexes(db, [TENANTS, API_KEYS, SENDER_IDS])
        return await action(db)
    finally:
        await client.close()


async def tenants_create(db: AsyncDatabase[Document], args: argparse.Namespace) -> dict[str, Any]:
    doc = await tenancy.create_tenant(db, args.name, tenant_id=args.id)
    return {"id": doc["_id"], "name": doc["name"], "status": doc["status"]}


async def keys_create(db: AsyncDatabase[Document], args: argparse.Namespace) -> dict[str, Any]:
    if await db[TENANTS].find_one({"_id": args.tenant}) is None:
        raise SystemExit(f"error: no tenant {args.tenant!r}")
    scopes = list(tenancy.TENANT_SCOPES) if args.scopes == "all" else [
        s.strip() for s in args.scopes.split(",") if s.strip()]
    try:
        key, doc = await tenancy.create_key(db, args.tenant, scopes,
                                            mode="live" if args.live else "test", name=args.name)
    except tenancy.UnknownScope as exc:
        raise SystemExit(f"error: {exc}; known: {', '.join(tenancy.SCOPES)}") from None
    return {"id": doc["_id"], "key": key, "mode": doc["mode"], "scopes": doc["scopes"],
            "note": "the key is shown once; store it now"}


async def sender_ids_approve(db: AsyncDatabase[Document], args: argparse.Namespace) -> dict[str, Any]:
    if await db[TENANTS].find_one({"_id": args.tenant}) is None:
        raise SystemExit(f"error: no tenant {args.tenant!r}")
    doc = await tenancy.approve_sender_id(db, args.tenant, args.sender_id)
    return {"id": doc["_id"], "tenant": args.tenant, "senderId": args.sender_id,
            "status": doc["status"]}


async def webhooks_create(db: AsyncDatabase[Document], args: argparse.Namespace) -> dict[str, Any]:
    if await db[TENANTS].find_one({"_id": args.tenant}) is None:
        raise SystemExit(f"error: no tenant {args.tenant!r}")
    events = [e.strip() for e in args.events.split(",") if e.strip()]
    secret, doc = await tenancy.create_webhook_endpoint(db, args.tenant, args.url, events=events)
    return {"id": doc["_id"], "url": doc["url"], "events": doc["events"], "secret": secret,
            "note": "the secret is shown once; store it now"}
