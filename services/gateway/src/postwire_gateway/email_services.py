"""The email channel's per-process state: the keyring, the DNS resolver, templates, verified domains.

Created once by ``create_app`` (it needs ``SECRET_KEYS``: DKIM keys are stored sealed) and reached
from handlers through ``email_services(gateway)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.asyncresolver

from postwire_platform.cache import TtlCache
from postwire_platform.dns_resolver import make_resolver
from postwire_platform.errors import ApiError
from postwire_platform.mongo import DOMAINS
from postwire_platform.secrets_at_rest import Keyring
from postwire_platform.service import Runtime

from .availability import mongo_guard
from .context import Gateway
from .settings import GatewaySettings
from .template_store import TemplateStore

EXTRA = "email_services"


def parent_domains(domain: str) -> list[str]:
    """``mail.shop.example`` → ``[mail.shop.example, shop.example]`` (never a bare TLD)."""
    labels = domain.lower().strip(".").split(".")
    return [".".join(labels[i:]) for i in range(max(1, len(labels) - 1))]


class VerifiedDomains:
    """Whether a tenant may send live from a domain: itself or a parent verified. Positives cached."""

    def __init__(self, runtime: Runtime, *, ttl: float) -> None:
        self._runtime = runtime
        self._ok: TtlCache[tuple[str, str], bool] = TtlCache(ttl)

    def remember(self, tenant_id: str, domain: str) -> None:
        self._ok.put((tenant_id, domain), True)

    def forget(self, tenant_id: str, domain: str) -> None:
        self._ok.discard((tenant_id, domain))

    async def require(self, tenant_id: str, domain: str, *, field: str = "from") -> None:
        """Return if verified, else 422 ``domain_not_verified`` naming ``field``."""
        async def verified() -> bool:
            found = await self._runtime.db[DOMAINS].find_one(
                {"tenant_id": tenant_id, "domain": {"$in": parent_domains(domain)},
                 "status": "verified"}, projection=["_id"])
            return found is not None

        async with mongo_guard("sending domain check"):
            ok = await self._ok.get_or_load((tenant_id, domain), verified)
        if not ok:
            raise ApiError(422, "domain_not_verified",
                           f"{domain} is not a verified sending domain of this account; add it "
                           "with POST /v1/domains and verify its DNS records (test keys may send "
                           "from any domain)", field=field)


@dataclass
class EmailServices:
    keyring: Keyring
    resolver: dns.asyncresolver.Resolver
    templates: TemplateStore
    domains: VerifiedDomains

    @classmethod
    def create(cls, runtime: Runtime, settings: GatewaySettings) -> EmailServices:
        """Raises ``SettingsError`` naming ``SECRET_KEYS`` or ``DNS_NAMESERVERS`` when they are bad."""
        services = cls(keyring=Keyring(settings.secret_keys),
                       resolver=make_resolver(settings.dns_nameservers),
                       templates=TemplateStore(runtime),
                       domains=VerifiedDomains(runtime, ttl=settings.auth_cache_seconds))
        runtime.extras[EXTRA] = services
        return services


def email_services(gateway: Gateway) -> EmailServices:
    """The EmailServices of ``gateway``'s process."""
    services: EmailServices = gateway.runtime.extras[EXTRA]
    return services
