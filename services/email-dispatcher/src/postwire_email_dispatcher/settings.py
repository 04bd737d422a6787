"""email-dispatcher's settings from the environment (``EMAIL_RELAY_HOST`` fills ``email_relay_host``)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from postwire_platform.settings import CommonSettings


def _default_retry_delays() -> list[float]:
    return [30.0, 120.0, 600.0, 1800.0, 3600.0]


class Settings(CommonSettings, frozen=True, kw_only=True):
    """Relay (or direct MX), DKIM keys, retries, tracking links and the sandbox's feedback target."""

    service_name: str = "email-dispatcher"
    http_port: int = 8082
    # the relay; empty host: deliver straight to each recipient's MX
    email_relay_host: str = ""
    email_relay_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 587
    email_relay_tls: Literal["starttls", "implicit", "none"] = "starttls"
    email_relay_username: str = ""
    email_relay_password: str = ""
    email_relay_verify_tls: bool = True
    email_relay_pool_size: Annotated[int, msgspec.Meta(ge=1, le=200)] = 10
    email_smtp_timeout: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    email_helo_name: str = "postwire.localhost"
    # direct delivery: the MX port (25 in production; tests use a local one) and the resolver
    email_mx_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 25
    dns_nameservers: str = ""
    email_retry_delays: list[Annotated[float, msgspec.Meta(gt=0)]] = msgspec.field(
        default_factory=_default_retry_delays)
    dispatch_lease_seconds: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    # open pixel and click redirects point at provider-ingest and are signed with this secret
    email_tracking_base_url: str = "http://127.0.0.1:8081"
    email_tracking_secret: str = "dev-tracking-secret"
    # the sandbox (test keys) posts simulated MTA feedback here, signed like a real MTA's
    email_feedback_url: str = "http://127.0.0.1:8081/v1/webhooks/email/feedback"
    email_feedback_secret: str = "dev-feedback-secret"
    sandbox_feedback_delay: Annotated[float, msgspec.Meta(ge=0)] = 0.2
    domain_cache_seconds: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    email_processing_hold_seconds: Annotated[float, msgspec.Meta(ge=0, le=5)] = 0.2
    """How long a message's PROCESSING event waits for its outcome to go out with it (one timeline
    write instead of two); a slower SMTP transaction gets PROCESSING on its own after this."""
    email_event_pairs: bool = True
    """PROCESSING and the events that came within the hold go out as one ``StatusEvents`` message
    (False: one message each, for a rolling upgrade whose reporting does not read it yet)."""

    @property
    def lease_recheck_seconds(self) -> float:
        """How long a message whose claim is held by a live lease waits before it is looked at again."""
        return self.dispatch_lease_seconds

    def delay_steps(self) -> list[float]:
        """Every delay queue the service uses on ``email-dispatcher.send``."""
        return sorted({*self.email_retry_delays, self.lease_recheck_seconds})
