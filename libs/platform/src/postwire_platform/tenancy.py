"""Tenants, API keys and sender ids: what the gateway and the operator CLI share (webhook endpoints:
``webhook_store``).

API keys are 190 bits of randomness, so a single SHA-256 is the right hash at rest (a slow password hash
buys nothing against brute force of that space and would cost every request). Only the hash and a short
display prefix are stored; the key itself is returned once.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Literal

from pymongo.asynchronous.database import AsyncDatabase

from .clock import utcnow
from .ids import new_id
from .mongo import API_KEYS, SENDER_IDS, TENANTS, Document

SCOPES: tuple[str, ...] = (
    "send:email", "read:email", "send:sms", "read:sms", "send:whatsapp", "read:whatsapp",
    "templates:write", "webhooks:write", "keys:write", "members:read", "members:write",
    "stats:read", "admin",
)
TENANT_SCOPES: tuple[str, ...] = tuple(s for s in SCOPES if s != "admin")
Mode = Literal["live", "test"]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key(mode: Mode) -> str:
    return f"pw_{mode}_{secrets.token_urlsafe(24).replace('-', 'x').replace('_', 'y')}"


def generate_webhook_secret() -> str:
    """``whsec_`` + base64 of 32 random bytes, as Standard Webhooks prescribes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class UnknownScope(ValueError):
    pass


async def create_tenant(db: AsyncDatabase[Document], name: str, *,
                        tenant_id: str | None = None) -> Document:
    doc: Document = {"_id": tenant_id or new_id("ten_"), "name": name, "status": "active",
                     "created_at": utcnow()}
    await db[TENANTS].insert_one(doc)
    return doc


async def create_key(db: AsyncDatabase[Document], tenant_id: str, scopes: list[str], *,
                     mode: Mode = "test", name: str = "",
                     rate_limit: tuple[int, int] | None = None) -> tuple[str, Document]:
    """Create a key; returns (the key, shown once; its stored record).

    ``rate_limit`` is (requests per minute, per second) for this key instead of the gateway default.
    """
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise UnknownScope(f"unknown scope(s): {', '.join(unknown)}")
    key = generate_key(mode)
    doc: Document = {
        "_id": new_id("key_"), "tenant_id": tenant_id, "hash": hash_key(key),
        "prefix": key[:12], "scopes": sorted(set(scopes)), "mode": mode, "name": name,
        "created_at": utcnow(), "revoked_at": None,
    }
    if rate_limit is not None:
        doc["rate_limit"] = {"per_minute": rate_limit[0], "per_second": rate_limit[1]}
    await db[API_KEYS].insert_one(doc)
    return key, doc


async def find_key(db: AsyncDatabase[Document], key: str) -> Document | None:
    """The active key record for ``key`` with its tenant, or None."""
    doc = await db[API_KEYS].find_one({"hash": hash_key(key), "revoked_at": None})
    if doc is None:
        return None
    tenant = await db[TENANTS].find_one({"_id": doc["tenant_id"]})
    if tenant is None:
        return None
    doc["tenant"] = tenant
    return doc


async def approve_sender_id(db: AsyncDatabase[Document], tenant_id: str, sender_id: str) -> Document:
    now = utcnow()
    await db[SENDER_IDS].update_one(
        {"tenant_id": tenant_id, "sender_id": sender_id},
        {"$set": {"status": "approved", "reviewed_at": now},
         "$setOnInsert": {"_id": new_id("sid_"), "created_at": now}},
        upsert=True,
    )
    doc = await db[SENDER_IDS].find_one({"tenant_id": tenant_id, "sender_id": sender_id})
    assert doc is not None
    return doc


async def sender_id_approved(db: AsyncDatabase[Document], tenant_id: str, sender_id: str) -> bool:
    doc = await db[SENDER_IDS].find_one(
        {"tenant_id": tenant_id, "sender_id": sender_id, "status": "approved"}, projection=["_id"])
    return doc is not None
