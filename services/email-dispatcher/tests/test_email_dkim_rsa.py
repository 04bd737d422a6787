"""DKIM's RSA step by OpenSSL: the same signatures as dkimpy's own, and verifiable."""

from __future__ import annotations

import base64
import time

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from postwire_email_dispatcher import compose as compose_module
from postwire_email_dispatcher import dkim_rsa
from postwire_email_dispatcher.compose import SigningKey, compose

from .email_support import command


def _key(bits: int = 2048) -> tuple[str, bytes]:
    """A private key as PKCS#1 PEM (as sending domains store theirs) and its DKIM TXT record."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = private.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = private.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}".encode()


def test_compose_signs_through_openssl() -> None:
    assert compose_module.dkim_rsa is dkim_rsa  # importing compose installed it
    assert dkim.RSASSA_PKCS1_v1_5_sign is dkim_rsa.sign_digest


@pytest.mark.parametrize("bits", [1024, 2048])
def test_the_signature_is_dkimpys_own_byte_for_byte_and_verifies(
        monkeypatch: pytest.MonkeyPatch, bits: int) -> None:
    pem, txt = _key(bits)
    key = SigningKey(domain="shop.example", selector="pw1", private_key_pem=pem)
    monkeypatch.setattr(time, "time", lambda: 1_790_000_000.0)  # the t= tag, the same for both
    signed = compose(command(), key=key, tracking_config=None).data
    header, _, body = signed.partition(b"\r\nFrom:")  # the signature is the first header
    monkeypatch.setattr(dkim, "RSASSA_PKCS1_v1_5_sign", dkim_rsa._ORIGINAL)  # dkimpy's own RSA
    again = dkim.sign(b"From:" + body, b"pw1", b"shop.example", pem.encode(),
                      include_headers=compose_module.SIGNED_HEADERS)
    assert header + b"\r\n" == again
    assert dkim.verify(signed, dnsfunc=lambda name, timeout=5: txt
                       if name == b"pw1._domainkey.shop.example." else None)


def test_a_tampered_message_does_not_verify() -> None:
    pem, txt = _key()
    signed = compose(command(), key=SigningKey(domain="shop.example", selector="pw1",
                                               private_key_pem=pem), tracking_config=None).data
    tampered = signed.replace(b"Your receipt", b"Your invoice")
    assert not dkim.verify(tampered, dnsfunc=lambda name, timeout=5: txt)
