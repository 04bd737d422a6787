"""``postwire secrets rotate`` re-seals stored secrets with the new first key of SECRET_KEYS."""

from __future__ import annotations

import json

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from postwire_cli.__main__ import main, parser
from postwire_cli.secrets import rotate
from postwire_platform.mongo import Document
from postwire_platform.secrets_at_rest import Keyring, SecretError, generate_key


async def test_rotation_re_encrypts_every_sealed_field_with_the_new_key(
        db: AsyncDatabase[Document]) -> None:
    old, new = generate_key(), generate_key()
    before = Keyring([old])
    await db["webhook_endpoints"].insert_many([
        {"_id": "we_1", "secret": before.encrypt("whsec_one", context="webhook_endpoints.secret:we_1"),
         "previous_secrets": [{"secret": before.encrypt(
             "whsec_older", context="webhook_endpoints.secret:we_1"), "expires_at": None}]},
        {"_id": "we_2", "secret": Keyring([new]).encrypt(
            "whsec_two", context="webhook_endpoints.secret:we_2")},
    ])
    await db["tenants"].insert_one({"_id": "ten_1", "whatsapp_line": {
        "phone_number_id": "1065", "access_token": before.encrypt(
            "EAAG-token", context="tenants.whatsapp_line.access_token:ten_1")}})
    await db["domains"].insert_one({"_id": "dom_1", "dkim_private_key": before.encrypt(
        "-----BEGIN PRIVATE KEY-----", context="domains.dkim_private_key:dom_1")})
    keys = json.dumps([new, old])

    dry = await rotate(db, parser().parse_args(["secrets", "rotate", "--secret-keys", keys,
                                                "--dry-run"]))
    assert dry["would_re_encrypt"] == 4
    assert (await db["domains"].find_one({"_id": "dom_1"}) or {})["dkim_private_key"].startswith(
        f"enc:v1:{before.primary_id}:")

    done = await rotate(db, parser().parse_args(["secrets", "rotate", "--secret-keys", keys]))
    assert done["re_encrypted"] == 4
    assert done["collections"] == {"webhook_endpoints.secret": 1,
                                   "webhook_endpoints.previous_secrets.secret": 1,
                                   "tenants.whatsapp_line.access_token": 1,
                                   "domains.dkim_private_key": 1}
    after = Keyring([new])  # the old key can go now
    we1 = await db["webhook_endpoints"].find_one({"_id": "we_1"}) or {}
    assert after.decrypt(we1["secret"], context="webhook_endpoints.secret:we_1") == "whsec_one"
    assert after.decrypt(we1["previous_secrets"][0]["secret"],
                         context="webhook_endpoints.secret:we_1") == "whsec_older"
    tenant = await db["tenants"].find_one({"_id": "ten_1"}) or {}
    assert after.decrypt(tenant["whatsapp_line"]["access_token"],
                         context="tenants.whatsapp_line.access_token:ten_1") == "EAAG-token"
    assert tenant["whatsapp_line"]["phone_number_id"] == "1065"
    domain = await db["domains"].find_one({"_id": "dom_1"}) or {}
    assert after.decrypt(domain["dkim_private_key"], context="domains.dkim_private_key:dom_1") == (
        "-----BEGIN PRIVATE KEY-----")
    with pytest.raises(SecretError):
        before.decrypt(we1["secret"], context="webhook_endpoints.secret:we_1")

    again = await rotate(db, parser().parse_args(["secrets", "rotate", "--secret-keys", keys]))
    assert again["re_encrypted"] == 0


def test_generate_key_prints_a_usable_key(capsys: pytest.CaptureFixture[str]) -> None:
    main(["secrets", "generate-key"])
    key = json.loads(capsys.readouterr().out)["key"]
    ring = Keyring([key])
    assert ring.decrypt(ring.encrypt("x", context="c"), context="c") == "x"
