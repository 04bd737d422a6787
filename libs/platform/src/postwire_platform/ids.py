"""Identifiers: time-ordered message ids and random tokens."""

from __future__ import annotations

import os
import secrets
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(prefix: str = "") -> str:
    """A ULID-shaped id: 48 bits of milliseconds then 80 random bits, Crockford base32, sortable."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return prefix + "".join(reversed(chars))


def token(nbytes: int = 24) -> str:
    """A URL-safe random token."""
    return secrets.token_urlsafe(nbytes)
