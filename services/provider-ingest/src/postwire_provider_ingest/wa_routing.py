"""Which tenant a WhatsApp notification belongs to, from the ``phone_number_id`` it arrived on.

In order: the tenant whose own line (``tenants.whatsapp_line.phone_number_id``) is that number, then the
operator's ``WHATSAPP_LINE_MAP`` (``{"<phone_number_id>": "<tenant id>"}``), then the platform default
tenant (``WHATSAPP_DEFAULT_TENANT_ID``). Lookups are cached for ``WHATSAPP_LINE_CACHE_SECONDS``
(``postwire_platform.cache.TtlCache``: notifications that miss a number together share one lookup).
On a number no single tenant owns (the platform's shared line), a reply names the message it answers
(``context.id``, a wamid): the tenant that sent that message owns the reply.
"""

from __future__ import annotations

from typing import Literal

from pymongo.asynchronous.database import AsyncDatabase

from postwire_platform.cache import TtlCache, always
from postwire_platform.mongo import MESSAGES, TENANTS, Document

Route = Literal["tenant_line", "line_map", "default", "unrouted"]


class LineRouter:
    """Routes phone number ids to tenants."""

    def __init__(self, db: AsyncDatabase[Document], line_map: dict[str, str], default_tenant: str,
                 *, ttl: float) -> None:
        self._tenants = db[TENANTS]
        self._messages = db[MESSAGES]
        self._map = dict(line_map)
        self._default = default_tenant
        self._cache: TtlCache[str, str] = TtlCache(ttl)
        """The owning tenant's id, ``""`` when no tenant's own line is the number."""

    async def tenant_for(self, phone_number_id: str) -> tuple[str | None, Route]:
        """The tenant id and how it was found; ``(None, "unrouted")`` when nothing claims the number."""
        owner = await self._line_owner(phone_number_id) if phone_number_id else None
        if owner is not None:
            return owner, "tenant_line"
        mapped = self._map.get(phone_number_id)
        if mapped:
            return mapped, "line_map"
        if self._default:
            return self._default, "default"
        return None, "unrouted"

    async def sender_of(self, wamid: str) -> str | None:
        """The tenant whose WhatsApp message has the provider id ``wamid``, if it is one of ours."""
        doc = await self._messages.find_one({"provider_message_id": wamid, "channel": "whatsapp"},
                                            projection=["tenant_id"])
        return str(doc["tenant_id"]) if doc and doc.get("tenant_id") else None

    async def _line_owner(self, phone_number_id: str) -> str | None:
        async def load() -> str:
            doc = await self._tenants.find_one({"whatsapp_line.phone_number_id": phone_number_id},
                                               projection=["_id"])
            return str(doc["_id"]) if doc else ""

        return await self._cache.get_or_load(phone_number_id, load, keep=always) or None
