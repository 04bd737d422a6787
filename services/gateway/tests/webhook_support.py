"""Helpers of the webhook endpoint tests."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from postwire_platform import tenancy
from postwire_platform.mongo import Document

PATH = "/v1/webhook-endpoints"
PUBLIC = "https://93.184.215.14/postwire"  # an IP literal: nothing here resolves names on the network


async def hooks_key(db: AsyncDatabase[Document], tenant_id: str,
                    mode: tenancy.Mode = "live") -> dict[str, str]:
    """A ``webhooks:write`` key with room for the many requests of one test."""
    key, _ = await tenancy.create_key(db, tenant_id, ["webhooks:write"], mode=mode,
                                      rate_limit=(100_000, 10_000))
    return {"Authorization": f"Bearer {key}"}
