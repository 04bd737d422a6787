"""Secrets at rest (webhook secrets, WhatsApp tokens, DKIM keys): AES-256-GCM with a rotatable keyring.

``SECRET_KEYS`` is a JSON list of base64 (standard or url-safe) 32-byte keys. The first one encrypts; every
one decrypts, so rotation is: put the new key first, keep the old ones until ``postwire secrets rotate``
(or a natural rewrite) has re-encrypted what they protect, then drop them.

A stored secret is the string ``enc:v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>``; the key id is the
first 8 hex digits of the key's SHA-256, so decryption picks the right key without trying them all. The
caller passes a context string (for example ``"webhook_endpoints.secret:we_…"``) that is bound as associated
data: a ciphertext copied onto another record does not decrypt there.

``cryptography``'s AESGCM does the cryptography; nothing here is hand-rolled beyond the framing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .settings import SettingsError

PREFIX = "enc:v1:"
_NONCE = 12


class SecretError(ValueError):
    """A stored secret cannot be decrypted (unknown key, tampered, or not ours)."""


def generate_key() -> str:
    """A new key for ``SECRET_KEYS`` (url-safe base64 of 32 random bytes)."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _decode_key(text: str) -> bytes:
    padded = text.strip() + "=" * (-len(text.strip()) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))
    except (binascii.Error, ValueError):
        raise SettingsError("SECRET_KEYS: an entry is not base64") from None
    if len(raw) != 32:
        raise SettingsError(f"SECRET_KEYS: a key must be 32 bytes, got {len(raw)}")
    return raw


def _key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


class Keyring:
    """Encrypts with the first key, decrypts with any."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise SettingsError("SECRET_KEYS: at least one key is required "
                                "(generate one with `postwire secrets generate-key`)")
        decoded = [_decode_key(k) for k in keys]
        self._primary = _key_id(decoded[0])
        self._keys = {_key_id(k): AESGCM(k) for k in decoded}

    @property
    def primary_id(self) -> str:
        return self._primary

    def encrypt(self, plaintext: str, *, context: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._keys[self._primary].encrypt(nonce, plaintext.encode(), context.encode())
        return f"{PREFIX}{self._primary}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, stored: str, *, context: str) -> str:
        if not is_encrypted(stored):
            raise SecretError("not an encrypted secret")
        try:
            key_id, payload = stored[len(PREFIX):].split(":", 1)
            blob = base64.urlsafe_b64decode(payload)
        except (ValueError, binascii.Error):
            raise SecretError("malformed encrypted secret") from None
        aead = self._keys.get(key_id)
        if aead is None:
            raise SecretError(f"encrypted with key {key_id}, which SECRET_KEYS no longer holds")
        try:
            return aead.decrypt(blob[:_NONCE], blob[_NONCE:], context.encode()).decode()
        except InvalidTag:
            raise SecretError("secret does not authenticate (tampered or wrong record)") from None

    def needs_rotation(self, stored: str) -> bool:
        """True when ``stored`` was sealed with a key other than the primary."""
        return not stored.startswith(f"{PREFIX}{self._primary}:")


def is_encrypted(value: str) -> bool:
    return value.startswith(PREFIX)
