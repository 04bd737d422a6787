"""A self-signed certificate for development TLS (the SMTP listener's STARTTLS, test relays).

Production deployments mount a real certificate; ``make run`` and the tests make one with
``cryptography`` at start-up instead of shipping a private key in the repository.
"""

from __future__ import annotations

import ipaddress
import ssl
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def self_signed_pem(hostname: str = "localhost", *, days: int = 365) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) for ``hostname``, 127.0.0.1 and ::1."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.now(UTC)
    alt_names: list[x509.GeneralName] = [
        x509.DNSName(hostname), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def server_context(cert_file: str = "", key_file: str = "", *,
                   hostname: str = "localhost") -> ssl.SSLContext:
    """A TLS server context from the given files, or from a fresh self-signed pair when both are empty."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if cert_file and key_file:
        context.load_cert_chain(cert_file, key_file)
        return context
    cert, key = self_signed_pem(hostname)
    with tempfile.TemporaryDirectory(prefix="postwire-tls-") as tmp:
        cert_path, key_path = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert_path.write_bytes(cert)
        key_path.write_bytes(key)
        key_path.chmod(0o600)
        context.load_cert_chain(str(cert_path), str(key_path))
    return context
