"""What email-dispatcher reads and writes besides its claims: sending domains' DKIM keys, suppressions.

``domains`` is the gateway's (docs/architecture.md); the private key is sealed with the keyring under the
context ``domains.dkim_private_key:<domain id>``. ``suppressions`` is shared: the dispatcher adds hard
bounces (never overwriting an existing entry's reason).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from postwire_platform.cache import TtlCache, always
from postwire_platform.ids import new_id
from postwire_platform.mongo import Document
from postwire_platform.secrets_at_rest import Keyring, SecretError

from .compose import SigningKey

SOURCE = "email-dispatcher"


def parent_domains(domain: str) -> list[str]:
    """``mail.shop.example`` → ``[mail.shop.example, shop.example]`` (never a bare TLD)."""
    labels = domain.lower().strip(".").split(".")
    return [".".join(labels[i:]) for i in range(max(1, len(labels) - 1))]


class DomainKeys:
    """The verified sending domain of a From address and its decrypted DKIM key, cached briefly."""

    def __init__(self, collection: AsyncCollection[Document], keyring: Keyring | None, *,
                 ttl: float, clock: Any) -> None:
        self._coll = collection
        self._keyring = keyring
        self._cache: TtlCache[tuple[str, str], tuple[SigningKey | None]] = TtlCache(
            ttl, now=lambda: float(clock().timestamp()))
        """Emails that miss a sender domain together share one lookup (``TtlCache``); "no key" is
        an answer kept like a key."""

    async def for_sender(self, tenant_id: str, domain: str) -> SigningKey | None:
        """The key to sign with, or None when the tenant has no verified domain covering ``domain``."""
        found = await self._cache.get_or_load((tenant_id, domain),
                                              lambda: self._load(tenant_id, domain), keep=always)
        return found[0] if found else None

    async def _load(self, tenant_id: str, domain: str) -> tuple[SigningKey | None]:
        docs = [d async for d in self._coll.find(
            {"tenant_id": tenant_id, "domain": {"$in": parent_domains(domain)},
             "status": "verified"})]
        if not docs or self._keyring is None:
            return (None,)
        best = max(docs, key=lambda d: len(d["domain"]))
        try:
            pem = self._keyring.decrypt(best["dkim_private_key"],
                                        context=f"domains.dkim_private_key:{best['_id']}")
        except SecretError:
            return (None,)
        return (SigningKey(domain=best["domain"], selector=best["dkim_selector"], private_key_pem=pem,
                           return_path_domain=(best.get("return_path_domain")
                                               if best.get("return_path_verified") else None)),)


class Suppressions:
    """Reads and adds entries of the shared ``suppressions`` collection."""

    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self._coll = collection

    async def find(self, tenant_id: str, addresses: list[str]) -> dict[str, Document]:
        """The suppression entries of ``addresses`` (lower-cased) for the tenant."""
        wanted = sorted({a.lower() for a in addresses})
        cursor = self._coll.find({"tenant_id": tenant_id, "email": {"$in": wanted}})
        return {doc["email"]: doc async for doc in cursor}

    async def add(self, tenant_id: str, address: str, *, reason: str, message_id: str,
                  detail: dict[str, Any], now: datetime) -> None:
        """Suppress ``address`` unless it already is (idempotent)."""
        await self._coll.update_one(
            {"tenant_id": tenant_id, "email": address.lower()},
            {"$setOnInsert": {"_id": new_id("sup_"), "reason": reason, "source": SOURCE,
                              "message_id": message_id, "detail": detail, "created_at": now}},
            upsert=True)
