"""The gateway's settings, read from environment variables by ``postwire_platform.settings``."""

from __future__ import annotations

from typing import Annotated

import msgspec

from postwire_platform.settings import CommonSettings


class GatewaySettings(CommonSettings, frozen=True, kw_only=True):
    """Common settings plus the outbox relay's timing, the request size cap, the auth cache and the live
    stream's limits."""

    service_name: str = "gateway"
    http_port: int = 8080
    outbox_grace_seconds: float = 10.0
    """A ``published: false`` message older than this is the outbox relay's to publish."""
    outbox_interval_seconds: float = 2.0
    """How often the outbox relay looks for unpublished messages."""
    published_mark_delay_seconds: Annotated[float, msgspec.Meta(ge=0)] = 2.0
    """How long after the publish the gateway marks a message ``published: true`` itself, if reporting
    has not already (with its first status event); at most half of ``outbox_grace_seconds``."""
    max_body_bytes: int = 1_000_000
    """Larger request bodies are refused with 413."""
    auth_cache_seconds: float = 5.0
    """How long an API key (and an approved sender id) is trusted without asking MongoDB again."""
    stream_buffer: Annotated[int, msgspec.Meta(ge=1)] = 256
    """Live stream: frames a client may have waiting; a client that falls further behind is closed."""
    stream_ping_seconds: Annotated[float, msgspec.Meta(gt=0)] = 20.0
    """Live stream: a ``ping`` frame after this long without any other frame (keeps proxies open)."""
    rate_limit_per_minute: int = 100
    """Requests per minute per API key, unless the key has its own limit."""
    rate_limit_per_second: int = 20
    """Burst: requests per second per API key, unless the key has its own limit."""
    # sending domains (issue 4): the resolver that verification asks, and what tenants publish
    dns_nameservers: str = ""
    """``host[:port]``, comma-separated; empty: the system's resolver."""
    email_spf_include: str = "spf.postwire.example"
    """The SPF ``include:`` a sending domain publishes."""
    email_return_path_host: str = "bounces.postwire.example"
    """Where a domain's return-path CNAME points (our bounce-processing MX)."""
    email_return_path_prefix: str = "pwbounces"
    """The return-path subdomain: ``pwbounces.<domain>``."""
    sms_max_segments: int = 10
    """An SMS body needing more segments than this is refused with 422 ``too_many_segments``."""
    otp_ttl_seconds: float = 300.0
    """``expiresAt`` of an OTP sent without one: this many seconds after acceptance."""
    whatsapp_cloud_api_enabled: bool = False
    """Off: ``POST /v1/whatsapp/send`` and ``/batch`` answer 503 ``whatsapp_disabled``."""
    whatsapp_phone_number_id: str = ""
    """The platform's default WhatsApp line (shown by ``/v1/account/whatsapp-cloud-line``; no tenant
    may claim it as its own)."""
    webhook_allow_private: bool = False
    """Allow webhook endpoints on loopback, private and other non-public addresses (``make run``)."""
    webhook_secret_overlap_seconds: int = 86400
    """After a webhook secret rotation, how long the old secret keeps signing (unless the request
    says otherwise)."""
