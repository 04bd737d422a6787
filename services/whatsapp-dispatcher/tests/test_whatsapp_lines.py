"""The tenant line lookup under load (real SecantusDB): sends that miss a tenant's line together
share one ``tenants`` query, and "this tenant has no line of its own" is kept like a line."""

from __future__ import annotations

import asyncio

from pymongo.asynchronous.database import AsyncDatabase

from postwire_platform.ids import new_id
from postwire_platform.mongo import TENANTS, Document
from postwire_testing.mongo_commands import watched
from postwire_whatsapp_dispatcher.lines import LineResolver, PlatformLine


async def test_concurrent_sends_share_one_line_lookup_and_no_line_is_remembered(
        mongodb_url: str, db: AsyncDatabase[Document]) -> None:
    plain, own = new_id(), new_id()
    await db[TENANTS].insert_many([
        {"_id": plain, "name": "no line of its own"},
        {"_id": own, "name": "own line", "whatsapp_line": {"phone_number_id": "106540352242922"}}])
    async with watched(mongodb_url, db.name, TENANTS) as (tenants, commands):
        lines = LineResolver(tenants.database, None, PlatformLine("100000000000001", "platform-token"),
                             ttl=60.0)
        first = await asyncio.gather(*(lines.resolve(plain) for _ in range(30)))
        assert commands.names == ["find"]
        assert {(line.phone_number_id, line.source) for line in first} == {
            ("100000000000001", "platform")}
        again = await lines.resolve(plain)
        assert again.source == "platform" and commands.names == ["find"]

        commands.clear()
        theirs = await asyncio.gather(*(lines.resolve(own) for _ in range(30)))
        assert commands.names == ["find"]
        assert {(line.phone_number_id, line.source, line.token) for line in theirs} == {
            ("106540352242922", "tenant", "platform-token")}
        await lines.mark_needs_attention(own, theirs[0], "190")
        commands.clear()
        await lines.resolve(own)
        assert commands.names == ["find"], "a flagged line is read again, not served from the cache"
