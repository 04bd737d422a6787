"""DKIM's RSA step through OpenSSL, the rest of the signature by dkimpy.

dkimpy builds, canonicalizes and hashes the DKIM-Signature header, then signs the digest with RSA of its
own in pure Python (``dkim.crypto.rsa_decrypt``: two modular exponentiations with Python integers).
That one step was half of email-dispatcher's CPU at 50 messages per second (py-spy, docs/performance.md,
change 32). RSASSA-PKCS1-v1_5 is deterministic, so OpenSSL (through ``cryptography``) makes the very same
signature for a fraction of the cost: ``install`` puts ``sign_digest`` where dkimpy's signer looks the
function up (``dkim.RSASSA_PKCS1_v1_5_sign``) and leaves everything else to dkimpy. The tests check the
signatures are byte for byte dkimpy's own and that the replacement is in place (dkimpy is pinned; an
upgrade that renames the function fails them rather than silently signing slowly).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Protocol

import dkim
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

_ORIGINAL = dkim.RSASSA_PKCS1_v1_5_sign
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"sha256": hashes.SHA256, "sha1": hashes.SHA1}
_KEYS: OrderedDict[tuple[int, int], rsa.RSAPrivateKey] = OrderedDict()
_KEEP = 256
"""Private keys kept built (a key is validated once when built, which costs about as much as a
signature); a sending domain has one key."""


class _Digest(Protocol):
    name: str

    def digest(self) -> bytes: ...


def sign_digest(digest: _Digest, private_key: dict[str, Any]) -> bytes:
    """``dkim.crypto.RSASSA_PKCS1_v1_5_sign``'s contract: sign the hash object ``digest`` with the key
    dkimpy parsed (``dkim.crypto.parse_pem_private_key``'s dict), PKCS#1 v1.5."""
    algorithm = _HASHES.get(digest.name.lower())
    if algorithm is None:
        return bytes(_ORIGINAL(digest, private_key))
    key = _key(private_key)
    try:
        return key.sign(digest.digest(), padding.PKCS1v15(), utils.Prehashed(algorithm()))
    except ValueError:  # a modulus too small for the digest: dkimpy raises its own error for it
        return bytes(_ORIGINAL(digest, private_key))


def _key(private_key: dict[str, Any]) -> rsa.RSAPrivateKey:
    ident = (private_key["modulus"], private_key["privateExponent"])
    key = _KEYS.get(ident)
    if key is None:
        key = rsa.RSAPrivateNumbers(
            p=private_key["prime1"], q=private_key["prime2"], d=private_key["privateExponent"],
            dmp1=private_key["exponent1"], dmq1=private_key["exponent2"],
            iqmp=private_key["coefficient"],
            public_numbers=rsa.RSAPublicNumbers(e=private_key["publicExponent"],
                                                n=private_key["modulus"]),
        ).private_key()
        _KEYS[ident] = key
        while len(_KEYS) > _KEEP:
            _KEYS.popitem(last=False)
    else:
        _KEYS.move_to_end(ident)
    return key


def install() -> None:
    """Have dkimpy's signer use ``sign_digest`` (idempotent)."""
    dkim.RSASSA_PKCS1_v1_5_sign = sign_digest
