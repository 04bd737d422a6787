"""Webhook endpoints at rest (sealed secrets, rotation with an overlap) and the SSRF address policy."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from postwire_platform.mongo import WEBHOOK_ENDPOINTS, Document
from postwire_platform.secrets_at_rest import Keyring, generate_key, is_encrypted
from postwire_platform.webhook_store import create_endpoint, rotate_secret, signing_secrets
from postwire_platform.webhook_targets import (
    UnresolvableHost,
    UnsafeTarget,
    check_url,
    is_forbidden,
)


async def test_the_secret_is_sealed_and_rotation_keeps_the_old_one_for_the_overlap(
        db: AsyncDatabase[Document]) -> None:
    ring = Keyring([generate_key()])
    secret, doc = await create_endpoint(db, ring, "ten_a", "https://h.example/x", events=["sms_sent"])
    stored = await db[WEBHOOK_ENDPOINTS].find_one({"_id": doc["_id"]})
    assert stored is not None and is_encrypted(stored["secret"]) and secret not in str(stored)
    assert [s.secret for s in signing_secrets(stored, ring)] == [secret]

    assert await rotate_secret(db, ring, "ten_other", doc["_id"], overlap=timedelta(hours=1)) is None
    rotated = await rotate_secret(db, ring, "ten_a", doc["_id"], overlap=timedelta(hours=1))
    assert rotated is not None
    new_secret, updated = rotated
    secrets = signing_secrets(updated, ring)
    assert [s.secret for s in secrets] == [new_secret, secret]
    assert secrets[0].expires_at is None and secrets[1].expires_at is not None

    # no overlap this time: the replaced secret stops at once; the first is still in its hour
    again = await rotate_secret(db, ring, "ten_a", doc["_id"], overlap=timedelta(0))
    assert again is not None
    assert [s.secret for s in signing_secrets(again[1], ring)] == [again[0], secret]


async def test_a_plain_secret_from_before_sealing_still_signs_and_is_sealed_on_rotation(
        db: AsyncDatabase[Document]) -> None:
    ring = Keyring([generate_key()])
    await db[WEBHOOK_ENDPOINTS].insert_one({"_id": "we_old", "tenant_id": "ten_a", "url": "https://x",
                                            "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
    doc = await db[WEBHOOK_ENDPOINTS].find_one({"_id": "we_old"})
    assert doc is not None
    assert signing_secrets(doc, ring)[0].secret == "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    rotated = await rotate_secret(db, ring, "ten_a", "we_old", overlap=timedelta(minutes=5))
    assert rotated is not None
    assert all(is_encrypted(p["secret"]) for p in rotated[1]["previous_secrets"])
    assert signing_secrets(rotated[1], ring)[1].secret == "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::",
])
def test_non_public_addresses_are_forbidden(address: str) -> None:
    assert is_forbidden(address)


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert not is_forbidden(address)


async def test_urls_are_checked_on_what_their_host_resolves_to() -> None:
    names = {"public.test": ["93.184.215.14"], "rebinding.test": ["93.184.215.14", "10.0.0.7"]}

    async def resolver(host: str, port: int) -> list[str]:
        if host not in names:
            raise UnresolvableHost(host, "NXDOMAIN")
        return names[host]

    async def check(url: str, *, https: bool = False, private: bool = False) -> str | None:
        try:
            await check_url(url, require_https=https, allow_private=private, resolver=resolver)
        except UnsafeTarget as exc:
            return exc.code
        return None

    assert await check("https://public.test/hook", https=True) is None
    assert await check("http://93.184.215.14:8080/hook") is None
    assert await check("http://public.test/hook", https=True) == "https_required"
    assert await check("https://rebinding.test/") == "private_target"
    assert await check("https://[::1]:9000/") == "private_target"
    assert await check("http://127.0.0.1:9000/") == "private_target"
    assert await check("http://127.0.0.1:9000/", private=True) is None
    assert await check("https://nowhere.test/") == "host_unresolvable"
    assert await check("ftp://public.test/") == "invalid_url"
    assert await check("https://user:pw@public.test/") == "invalid_url"
    assert await check("https://public.test:99999/") == "invalid_url"


async def test_a_previous_secret_whose_key_is_gone_does_not_stop_the_current_one(
        db: AsyncDatabase[Document]) -> None:
    old_key, new_key = generate_key(), generate_key()
    _, doc = await create_endpoint(db, Keyring([old_key]), "ten_a", "https://h.example/x")
    rotated = await rotate_secret(db, Keyring([new_key, old_key]), "ten_a", doc["_id"],
                                  overlap=timedelta(hours=1))
    assert rotated is not None
    # the old key left SECRET_KEYS before the overlap ended (and before `secrets rotate` ran)
    assert [s.secret for s in signing_secrets(rotated[1], Keyring([new_key]))] == [rotated[0]]
