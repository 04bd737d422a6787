"""``ensure_indexes`` on a database made by an earlier release, against a real MongoDB-wire server."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from postwire_platform.mongo import INDEXES, WEBHOOK_ATTEMPTS, Document, ensure_indexes


async def test_an_index_whose_ttl_option_was_taken_away_is_made_again_without_it(
        db: AsyncDatabase[Document]) -> None:
    # as an earlier release left it: the attempts' expiry as a TTL index, and a record in place
    await db[WEBHOOK_ATTEMPTS].create_indexes(
        [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0)])
    await db[WEBHOOK_ATTEMPTS].insert_one({"_id": "att_1", "expires_at": None})
    await ensure_indexes(db, [WEBHOOK_ATTEMPTS])
    info = await db[WEBHOOK_ATTEMPTS].index_information()
    assert info["expires_at_1"]["key"] == [("expires_at", 1)]
    assert "expireAfterSeconds" not in info["expires_at_1"]
    assert {m.document["name"] for m in INDEXES[WEBHOOK_ATTEMPTS]} <= info.keys()
    assert await db[WEBHOOK_ATTEMPTS].count_documents({}) == 1  # the data stays
    # and a second start finds nothing to change
    await ensure_indexes(db, [WEBHOOK_ATTEMPTS])
    assert await db[WEBHOOK_ATTEMPTS].index_information() == info


async def test_a_ttl_option_added_in_an_upgrade_is_put_on_the_existing_index(
        db: AsyncDatabase[Document]) -> None:
    [model] = [m for m in INDEXES["rate_limits"] if "expireAfterSeconds" in m.document]
    await db["rate_limits"].create_indexes([IndexModel(model.document["key"].items())])
    await ensure_indexes(db, ["rate_limits"])
    info = await db["rate_limits"].index_information()
    assert info[model.document["name"]]["expireAfterSeconds"] == 0
