"""Secrets at rest: sealed with the first key, opened with any, bound to their record."""

from __future__ import annotations

import pytest

from postwire_platform.secrets_at_rest import Keyring, SecretError, generate_key, is_encrypted
from postwire_platform.settings import SettingsError


def test_round_trip_and_no_plaintext() -> None:
    ring = Keyring([generate_key()])
    sealed = ring.encrypt("whsec_abc", context="webhook_endpoints.secret:we_1")
    assert is_encrypted(sealed) and "whsec_abc" not in sealed
    assert ring.decrypt(sealed, context="webhook_endpoints.secret:we_1") == "whsec_abc"
    assert ring.encrypt("x", context="c") != ring.encrypt("x", context="c")  # fresh nonce


def test_rotation_old_key_still_opens_and_is_flagged() -> None:
    old, new = generate_key(), generate_key()
    sealed = Keyring([old]).encrypt("token", context="c")
    rotated = Keyring([new, old])
    assert rotated.decrypt(sealed, context="c") == "token"
    assert rotated.needs_rotation(sealed)
    assert not rotated.needs_rotation(rotated.encrypt("token", context="c"))
    with pytest.raises(SecretError, match="no longer holds"):
        Keyring([new]).decrypt(sealed, context="c")


def test_copied_to_another_record_or_tampered_does_not_open() -> None:
    ring = Keyring([generate_key()])
    sealed = ring.encrypt("token", context="a")
    with pytest.raises(SecretError):
        ring.decrypt(sealed, context="b")
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(SecretError):
        ring.decrypt(tampered, context="a")
    with pytest.raises(SecretError):
        ring.decrypt("plain", context="a")


def test_bad_keys_are_configuration_errors() -> None:
    with pytest.raises(SettingsError, match="SECRET_KEYS"):
        Keyring([])
    with pytest.raises(SettingsError, match="32 bytes"):
        Keyring(["c2hvcnQ="])
