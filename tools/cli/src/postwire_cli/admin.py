"""Operator commands that bootstrap a deployment, talking to MongoDB directly (``MONGODB_URL``)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from postwire_platform import tenancy, webhook_store
from postwire_platform.mongo import (
    API_KEYS,
    SENDER_IDS,
    TENANTS,
    Document,
    ensure_indexes,
    make_client,
)
from postwire_platform.secrets_at_rest import Keyring
from postwire_platform.settings import SettingsError

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
    rate_limit = parse_rate_limit(args.rate_limit) if args.rate_limit else None
    try:
        key, doc = await tenancy.create_key(db, args.tenant, scopes,
                                            mode="live" if args.live else "test", name=args.name,
                                            rate_limit=rate_limit)
    except tenancy.UnknownScope as exc:
        raise SystemExit(f"error: {exc}; known: {', '.join(tenancy.SCOPES)}") from None
    return {"id": doc["_id"], "key": key, "mode": doc["mode"], "scopes": doc["scopes"],
            "note": "the key is shown once; store it now"}


def parse_rate_limit(text: str) -> tuple[int, int]:
    """``6000`` or ``6000/200``: per minute, and per second (default: a third of a minute's worth)."""
    minute, _, second = text.partition("/")
    try:
        per_minute = int(minute)
        per_second = int(second) if second else max(1, per_minute // 3)
    except ValueError:
        raise SystemExit(f"error: --rate-limit {text!r}: expected PER_MINUTE[/PER_SECOND]") from None
    if per_minute < 1 or per_second < 1:
        raise SystemExit("error: --rate-limit values must be positive")
    return per_minute, per_second


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
    secret, doc = await webhook_store.create_endpoint(db, keyring(args), args.tenant, args.url,
                                                      events=events)
    return {"id": doc["_id"], "url": doc["url"], "events": doc["events"], "secret": secret,
            "note": "the secret is shown once; store it now"}


def keyring(args: argparse.Namespace) -> Keyring:
    """The keyring that seals stored secrets: ``SECRET_KEYS``, else the one ``make run`` keeps in
    ``<state dir>/secrets.json``."""
    raw = os.environ.get("SECRET_KEYS")
    try:
        if raw:
            return Keyring(json.loads(raw))
        state = Path(args.state_dir) / "secrets.json"
        if state.exists():
            return Keyring([json.loads(state.read_text())["secret_key"]])
        return Keyring([])
    except (SettingsError, ValueError, KeyError) as exc:
        raise SystemExit(f"error: {exc} (set SECRET_KEYS as the services have it, or --state-dir)"
                         ) from None
