"""Signed URL tokens (open pixel, click redirect) and the development TLS certificate."""

from __future__ import annotations

import ssl

import pytest
from cryptography import x509

from postwire_platform import signed_tokens
from postwire_platform.tls import self_signed_pem, server_context


def test_a_token_round_trips_and_cannot_be_altered() -> None:
    token = signed_tokens.sign("s3cret", {"m": "01JD", "u": "https://shop.example/a?b=1"})
    assert signed_tokens.verify("s3cret", token) == {"m": "01JD", "u": "https://shop.example/a?b=1"}
    body, _, signature = token.partition(".")
    forged_body = signed_tokens.sign("other", {"m": "01JD", "u": "https://evil.example"}).split(".")[0]
    for bad in (f"{forged_body}.{signature}", f"{body}.{signature[:-1]}A", body, "", "a.b"):
        with pytest.raises(signed_tokens.BadToken):
            signed_tokens.verify("s3cret", bad)
    with pytest.raises(signed_tokens.BadToken):
        signed_tokens.verify("another-secret", token)
    with pytest.raises(signed_tokens.BadToken):
        signed_tokens.verify("", token)


def test_the_self_signed_certificate_names_localhost_and_loads() -> None:
    cert_pem, _ = self_signed_pem("smtp.localhost")
    cert = x509.load_pem_x509_certificate(cert_pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "smtp.localhost" in names.get_values_for_type(x509.DNSName)
    assert isinstance(server_context(hostname="smtp.localhost"), ssl.SSLContext)


def test_a_signed_body_verifies_only_unchanged_and_recent() -> None:
    body = b'{"type":"bounce"}'
    header = signed_tokens.sign_body("s", body, 1_700_000_000)
    signed_tokens.verify_body("s", body, header, now=1_700_000_100)
    for bad_body, bad_header, now in ((b"{}", header, 1_700_000_000),
                                      (body, header.replace("v1=", "v1=0"), 1_700_000_000),
                                      (body, header, 1_700_001_000), (body, None, 1_700_000_000),
                                      (body, "t=x,v1=y", 1_700_000_000)):
        with pytest.raises(signed_tokens.BadToken):
            signed_tokens.verify_body("s", bad_body, bad_header, now=now)
