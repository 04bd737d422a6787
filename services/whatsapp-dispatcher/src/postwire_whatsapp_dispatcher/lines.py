"""Which WhatsApp line a tenant sends on: its own (``tenants.whatsapp_line``) or the platform default.

A tenant's line applies once it names a ``phone_number_id``; it sends with the tenant's own access token
(sealed at rest, decrypted here) or, when the tenant stored none, the platform's token. Lines are cached
for ``WHATSAPP_LINE_CACHE_SECONDS``, so a change through ``PATCH /v1/account/whatsapp-cloud-line`` takes
effect within that time; sends that miss a tenant's line together share one lookup, and a line in use
is renewed in the background before it expires (``postwire_platform.cache.TtlCache``).
A Graph error 190 on the tenant's own token marks the line ``needs_attention``;
sends on it then fail at once until the tenant stores a new token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from pymongo.asynchronous.database import AsyncDatabase

from postwire_platform.cache import TtlCache, always
from postwire_platform.clock import utcnow
from postwire_platform.mongo import TENANTS, Document
from postwire_platform.secrets_at_rest import Keyring, SecretError

log = logging.getLogger(__name__)

LineSource = Literal["tenant", "platform", "sandbox"]


def token_context(tenant_id: str) -> str:
    """The associated data a tenant's token is sealed with (docs/architecture.md)."""
    return f"tenants.whatsapp_line.access_token:{tenant_id}"


@dataclass(frozen=True)
class Line:
    """A phone number to send from and the token to send with."""

    phone_number_id: str
    token: str
    source: LineSource
    tenant_token: bool
    """True when the token is the tenant's own (a 190 is then the tenant's to fix)."""


class LineUnavailable(Exception):
    """No line can be used; the message fails with ``code``."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class PlatformLine:
    phone_number_id: str
    token: str


class LineResolver:
    """Resolves and caches each tenant's line."""

    def __init__(self, db: AsyncDatabase[Document], keyring: Keyring | None, platform: PlatformLine,
                 *, ttl: float) -> None:
        self._tenants = db[TENANTS]
        self._keyring = keyring
        self._platform = platform
        self._cache: TtlCache[str, Document] = TtlCache(ttl)
        """The tenant's ``whatsapp_line``, ``{}`` when it has none (an answer kept like any other)."""

    async def phone_number_id(self, tenant_id: str) -> str | None:
        """The phone number id the tenant's messages come from (for the sandbox), if any is set."""
        stored = await self._stored(tenant_id)
        if stored and stored.get("phone_number_id"):
            return str(stored["phone_number_id"])
        return self._platform.phone_number_id or None

    async def resolve(self, tenant_id: str) -> Line:
        """The line for a live send; ``LineUnavailable`` when neither the tenant nor the platform has one."""
        stored = await self._stored(tenant_id)
        if stored and stored.get("phone_number_id"):
            return self._tenant_line(tenant_id, stored)
        if self._platform.phone_number_id and self._platform.token:
            return Line(self._platform.phone_number_id, self._platform.token, "platform", False)
        raise LineUnavailable("no_whatsapp_line",
                              "no WhatsApp line: the tenant has none and WHATSAPP_PHONE_NUMBER_ID / "
                              "WHATSAPP_ACCESS_TOKEN are not set")

    def _tenant_line(self, tenant_id: str, stored: Document) -> Line:
        phone = str(stored["phone_number_id"])
        sealed = stored.get("access_token")
        if not sealed:
            if not self._platform.token:
                raise LineUnavailable("no_whatsapp_token",
                                      "the tenant's line has no access token and the platform has "
                                      "none (WHATSAPP_ACCESS_TOKEN)")
            return Line(phone, self._platform.token, "tenant", False)
        if stored.get("needs_attention"):
            raise LineUnavailable("line_needs_attention",
                                  "Meta rejected the tenant's access token (190); store a new one with "
                                  "PATCH /v1/account/whatsapp-cloud-line")
        if self._keyring is None:
            raise LineUnavailable("line_misconfigured", "SECRET_KEYS is not configured")
        try:
            token = self._keyring.decrypt(str(sealed), context=token_context(tenant_id))
        except SecretError as exc:
            log.error("tenant's WhatsApp token cannot be decrypted",
                      extra={"tenant_id": tenant_id, "error": str(exc)})
            raise LineUnavailable("line_misconfigured",
                                  "the tenant's access token cannot be decrypted with SECRET_KEYS; "
                                  "store it again") from exc
        return Line(phone, token, "tenant", True)

    async def mark_needs_attention(self, tenant_id: str, line: Line, reason: str) -> None:
        """Meta refused the tenant's own token (190): flag the line until the tenant replaces it."""
        await self._tenants.update_one(
            {"_id": tenant_id, "whatsapp_line.phone_number_id": line.phone_number_id},
            {"$set": {"whatsapp_line.needs_attention": True,
                      "whatsapp_line.attention_reason": reason,
                      "whatsapp_line.attention_at": utcnow()}})
        self._cache.discard(tenant_id)

    async def _stored(self, tenant_id: str) -> Document | None:
        async def load() -> Document:
            doc = await self._tenants.find_one({"_id": tenant_id}, projection=["whatsapp_line"])
            line = doc.get("whatsapp_line") if doc else None
            return line if isinstance(line, dict) else {}

        return await self._cache.get_or_load(tenant_id, load, keep=always) or None
