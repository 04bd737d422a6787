"""The sending domain's DKIM key under load (real SecantusDB): emails that miss a sender domain
together share one ``domains`` query, "no verified domain" is kept too, and nothing is served past
``DOMAIN_CACHE_SECONDS``."""

from __future__ import annotations

import asyncio

from pymongo.asynchronous.database import AsyncDatabase

from postwire_email_dispatcher.stores import DomainKeys
from postwire_platform.mongo import DOMAINS, Document
from postwire_platform.secrets_at_rest import Keyring
from postwire_testing.doubles import HandClock
from postwire_testing.mongo_commands import watched

from .email_support import SECRET_KEY, verified_domain


async def test_concurrent_emails_share_one_domain_lookup_until_it_expires(
        mongodb_url: str, db: AsyncDatabase[Document]) -> None:
    domain = await verified_domain(db, "shop.example", tenant_id="ten_keys")
    clock = HandClock()
    async with watched(mongodb_url, db.name, DOMAINS) as (domains, commands):
        keys = DomainKeys(domains, Keyring([SECRET_KEY]), ttl=30.0, clock=clock)
        found = await asyncio.gather(*(keys.for_sender("ten_keys", "mail.shop.example")
                                       for _ in range(30)))
        assert commands.names == ["find"]
        assert {(k.domain, k.selector) for k in found if k is not None} == {
            ("shop.example", domain.selector)} and None not in found

        commands.clear()
        unknown = await asyncio.gather(*(keys.for_sender("ten_keys", "other.example")
                                         for _ in range(30)))
        assert unknown == [None] * 30 and commands.names == ["find"]
        assert await keys.for_sender("ten_keys", "other.example") is None
        assert commands.names == ["find"], "no verified domain is an answer kept like a key"

        clock.advance(31.0)
        commands.clear()
        assert await keys.for_sender("ten_keys", "other.example") is None
        assert commands.names == ["find"], "an answer is not served past its TTL"
