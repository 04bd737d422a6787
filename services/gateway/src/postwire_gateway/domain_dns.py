"""Sending domains: the DKIM key pair, the DNS records to publish, and checking them with dnspython.

``domains`` {_id "dom_…", tenant_id, domain, status "pending"|"verified", dkim_selector,
dkim_private_key (sealed: context ``domains.dkim_private_key:<id>``), dkim_public_key (base64 DER),
return_path_domain, dkim_verified, spf_verified, return_path_verified, checks {…}, last_checked_at,
verified_at, created_at}. A domain is verified when its DKIM key and SPF include are published; the
return-path CNAME is optional (without it, bounces go to the From address's domain).
"""

from __future__ import annotations

import asyncio
import base64
import re
from dataclasses import dataclass
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.resolver
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from postwire_platform.errors import ApiError

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalise_domain(raw: str) -> str:
    """``raw`` as a lower-case ASCII (IDNA) domain of at least two labels, or 422 naming ``domain``."""
    text = raw.strip().rstrip(".").lower()
    try:
        ascii_name = text.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_name = ""
    labels = ascii_name.split(".")
    if (len(labels) < 2 or len(ascii_name) > 253 or not all(_LABEL.match(label) for label in labels)
            or labels[-1].isdigit()):
        raise ApiError(422, "invalid_domain", f"{raw!r} is not a domain name such as mail.example.com",
                       field="domain")
    return ascii_name


@dataclass(frozen=True)
class KeyPair:
    private_pem: str
    public_b64: str
    """base64 of the SubjectPublicKeyInfo DER, as the DKIM TXT record's ``p=`` carries it."""


def _generate() -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return KeyPair(private, base64.b64encode(public).decode())


async def generate_key_pair() -> KeyPair:
    """A fresh 2048-bit RSA key (made in a thread: it takes tens of milliseconds of CPU)."""
    return await asyncio.to_thread(_generate)


def dkim_name(doc: dict[str, Any]) -> str:
    return f"{doc['dkim_selector']}._domainkey.{doc['domain']}"


def dkim_value(doc: dict[str, Any]) -> str:
    return f"v=DKIM1; k=rsa; p={doc['dkim_public_key']}"


def spf_value(include: str) -> str:
    return f"v=spf1 include:{include} ~all"


def dns_records(doc: dict[str, Any], *, spf_include: str, return_path_host: str) -> list[dict[str, Any]]:
    """The records the tenant publishes, each with whether the last check found it."""
    return [
        {"purpose": "dkim", "type": "TXT", "name": dkim_name(doc), "value": dkim_value(doc),
         "verified": bool(doc.get("dkim_verified"))},
        {"purpose": "spf", "type": "TXT", "name": doc["domain"], "value": spf_value(spf_include),
         "verified": bool(doc.get("spf_verified")),
         "note": f"or add include:{spf_include} to the domain's existing SPF record"},
        {"purpose": "return_path", "type": "CNAME", "name": doc["return_path_domain"],
         "value": return_path_host, "verified": bool(doc.get("return_path_verified"))},
    ]


@dataclass(frozen=True)
class Check:
    ok: bool
    found: list[str]
    reason: str


async def _lookup(resolver: dns.asyncresolver.Resolver, name: str, rdtype: str) -> tuple[list[str], str]:
    """Values found (TXT strings joined, CNAME targets) and, when none, why."""
    try:
        answer = await resolver.resolve(name, rdtype)
    except dns.resolver.NXDOMAIN:
        return [], f"{name} does not exist"
    except dns.resolver.NoAnswer:
        return [], f"{name} has no {rdtype} record"
    except dns.exception.Timeout:
        return [], f"DNS did not answer for {name} in time"
    except dns.exception.DNSException as exc:
        return [], f"DNS lookup of {name} failed: {exc}"
    if rdtype == "TXT":
        return [b"".join(r.strings).decode("utf-8", "replace") for r in answer], ""
    return [str(r.target).rstrip(".").lower() for r in answer], ""


async def check_domain(resolver: dns.asyncresolver.Resolver, doc: dict[str, Any], *,
                       spf_include: str, return_path_host: str) -> dict[str, Check]:
    """Look the three records up (concurrently) and judge each."""
    (dkim_found, dkim_why), (spf_found, spf_why), (rp_found, rp_why) = await asyncio.gather(
        _lookup(resolver, dkim_name(doc), "TXT"), _lookup(resolver, doc["domain"], "TXT"),
        _lookup(resolver, doc["return_path_domain"], "CNAME"))
    key = doc["dkim_public_key"]
    dkim_ok = any(f"p={key}" in value.replace(" ", "") for value in dkim_found)
    spf_records = [v for v in spf_found if v.lower().startswith("v=spf1")]
    spf_ok = any(f"include:{spf_include.lower()}" in v.lower().split() for v in spf_records)
    rp_ok = return_path_host.lower().rstrip(".") in rp_found
    return {
        "dkim": Check(dkim_ok, dkim_found, "" if dkim_ok else dkim_why or "the TXT record does not "
                      "hold this domain's public key"),
        "spf": Check(spf_ok, spf_records, "" if spf_ok else spf_why or
                     f"no SPF record includes {spf_include}"),
        "return_path": Check(rp_ok, rp_found, "" if rp_ok else rp_why or
                             f"the CNAME does not point at {return_path_host}"),
    }
