"""Routing a WhatsApp notification to its tenant under load (real SecantusDB): notifications that
miss a number together share one ``tenants`` query, and "no tenant's own line" is kept too."""

from __future__ import annotations

import asyncio

from pymongo.asynchronous.database import AsyncDatabase

from postwire_platform.ids import new_id
from postwire_platform.mongo import TENANTS, Document
from postwire_provider_ingest.wa_routing import LineRouter
from postwire_testing.mongo_commands import watched


async def test_concurrent_notifications_share_one_owner_lookup_and_no_owner_is_remembered(
        mongodb_url: str, db: AsyncDatabase[Document]) -> None:
    owner = new_id()
    await db[TENANTS].insert_one({"_id": owner, "whatsapp_line": {"phone_number_id": "106540352242922"}})
    async with watched(mongodb_url, db.name, TENANTS) as (tenants, commands):
        router = LineRouter(tenants.database, {"100000000000002": "t_mapped"}, "t_default", ttl=60.0)
        routes = await asyncio.gather(*(router.tenant_for("106540352242922") for _ in range(30)))
        assert set(routes) == {(owner, "tenant_line")} and commands.names == ["find"]

        commands.clear()
        shared = await asyncio.gather(*(router.tenant_for("100000000000001") for _ in range(30)))
        mapped = await asyncio.gather(*(router.tenant_for("100000000000002") for _ in range(30)))
        assert set(shared) == {("t_default", "default")}
        assert set(mapped) == {("t_mapped", "line_map")}
        assert commands.names == ["find", "find"]
        await router.tenant_for("100000000000001")
        await router.tenant_for("106540352242922")
        assert commands.names == ["find", "find"]
