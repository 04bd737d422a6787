"""Sender ids a tenant may send from, with approvals cached for a few seconds."""

from __future__ import annotations

from postwire_platform import tenancy
from postwire_platform.cache import TtlCache
from postwire_platform.errors import ApiError
from postwire_platform.service import Runtime

from .availability import mongo_guard


class SenderIds:
    """Checks ``tenancy.sender_id_approved``; only approvals are cached, never refusals."""

    def __init__(self, runtime: Runtime, *, ttl: float) -> None:
        self._runtime = runtime
        self._approved: TtlCache[tuple[str, str], bool] = TtlCache(ttl)

    async def require_approved(self, tenant_id: str, sender_id: str, *,
                               field: str = "senderId") -> None:
        """Return if approved for the tenant, else 422 ``sender_id_not_approved`` naming ``field``."""
        async with mongo_guard("sender id check"):
            approved = await self._approved.get_or_load(
                (tenant_id, sender_id),
                lambda: tenancy.sender_id_approved(self._runtime.db, tenant_id, sender_id))
        if not approved:
            raise ApiError(422, "sender_id_not_approved",
                           f"sender id {sender_id!r} is not approved for this account; request it "
                           "with POST /v1/sms/sender-id-requests", field=field)
