"""whatsapp-dispatcher settings from the environment (``WHATSAPP_GRAPH_URL`` fills ``whatsapp_graph_url``)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from postwire_platform.secrets_at_rest import Keyring
from postwire_platform.settings import CommonSettings, SettingsError
from postwire_whatsapp.cloud_api import DEFAULT_GRAPH_URL, DEFAULT_GRAPH_VERSION

Positive = Annotated[float, msgspec.Meta(gt=0)]


def _retry_delays() -> list[float]:
    return [2.0, 10.0, 60.0, 300.0]


def _pacing_delays() -> list[float]:
    return [1.0, 3.0, 10.0, 30.0]


class Settings(CommonSettings, frozen=True, kw_only=True):
    """The Graph API, the platform's default line, pacing, retries and the sandbox."""

    service_name: str = "whatsapp-dispatcher"
    http_port: int = 8084
    whatsapp_cloud_api_enabled: bool = False
    """Off: every command ends FAILED ``whatsapp_disabled`` (the gateway refuses sends with 503)."""
    whatsapp_graph_url: str = DEFAULT_GRAPH_URL
    whatsapp_graph_version: Annotated[str, msgspec.Meta(pattern=r"^v\d+\.\d+$")] = DEFAULT_GRAPH_VERSION
    whatsapp_graph_timeout: Positive = 10.0
    whatsapp_phone_number_id: Annotated[str, msgspec.Meta(pattern=r"^\d*$")] = ""
    """The platform's default line; a tenant's own line (``/v1/account/whatsapp-cloud-line``) wins."""
    whatsapp_access_token: str = ""
    whatsapp_rate_per_number: Positive = 80.0
    """Messages per second per business phone number (Meta's default throughput is about 80/s)."""
    whatsapp_burst_per_number: Annotated[int, msgspec.Meta(ge=1)] = 80
    whatsapp_rate_per_recipient: Positive = 1 / 6
    """Messages per second to one recipient from one number (Meta's pair limit: about 1 per 6 s)."""
    whatsapp_burst_per_recipient: Annotated[int, msgspec.Meta(ge=1)] = 5
    whatsapp_pacing_max_wait: Annotated[float, msgspec.Meta(ge=0)] = 1.0
    """A send whose pacing slot is at most this far away waits in the handler; a later one goes to a
    delay queue, so a busy number never holds the consumer's prefetch for the others."""
    whatsapp_pacing_delays: list[Positive] = msgspec.field(default_factory=_pacing_delays)
    whatsapp_retry_delays: list[Positive] = msgspec.field(default_factory=_retry_delays)
    """Delays before each retry after a throttle or a network error; then the message fails."""
    whatsapp_line_cache_seconds: Annotated[float, msgspec.Meta(ge=0)] = 5.0
    whatsapp_app_secret: str = ""
    """The App Secret: the sandbox signs its status notifications with it, as Meta does."""
    whatsapp_sandbox_webhook_url: str = "http://127.0.0.1:8081/v1/webhooks/whatsapp"
    whatsapp_sandbox_status_delay: Annotated[float, msgspec.Meta(ge=0)] = 0.2
    dispatch_lease_seconds: Positive = 30.0
    whatsapp_processing_hold_seconds: Annotated[float, msgspec.Meta(ge=0, le=5)] = 0.2
    """How long a message's PROCESSING event waits for its SENT or FAILED to go out with it (one
    timeline write instead of two); a slower Graph call gets PROCESSING on its own after this."""
    whatsapp_event_pairs: bool = True
    """PROCESSING and the SENT or FAILED that came within the hold go out as one ``StatusEvents``
    message (False: two messages, for a rolling upgrade whose reporting does not read it yet)."""

    def check(self) -> Keyring | None:
        """Cross-field checks at start-up; the keyring that decrypts tenants' tokens (None when off)."""
        if not self.whatsapp_cloud_api_enabled:
            return None
        if not self.secret_keys:
            raise SettingsError("SECRET_KEYS: required when WHATSAPP_CLOUD_API_ENABLED is on "
                                "(tenants' access tokens are stored encrypted)")
        if bool(self.whatsapp_phone_number_id) != bool(self.whatsapp_access_token):
            raise SettingsError("WHATSAPP_ACCESS_TOKEN: WHATSAPP_PHONE_NUMBER_ID and "
                                "WHATSAPP_ACCESS_TOKEN must be set together (or both left empty)")
        return Keyring(self.secret_keys)

    def delay_steps(self) -> list[float]:
        """Every delay queue the service uses on ``whatsapp-dispatcher.send``."""
        return sorted({*self.whatsapp_retry_delays, *self.whatsapp_pacing_delays,
                       self.dispatch_lease_seconds})
