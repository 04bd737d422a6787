"""sms-dispatcher's settings, read from the environment (``SMS_CARRIER_URL`` fills ``sms_carrier_url``)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from postwire_platform.settings import CommonSettings

from .routes import RoutingTable, legacy_table


def _default_retry_delays() -> list[float]:
    return [2.0, 10.0, 60.0, 300.0]


class SmsDispatcherSettings(CommonSettings, frozen=True, kw_only=True):
    """Carrier endpoint, receipt callback, sandbox, lease and retry schedule."""

    service_name: str = "sms-dispatcher"
    http_port: int = 8083
    sms_carrier_url: str = ""
    sms_carrier_token: str = ""
    sms_carrier_timeout: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    sms_dlr_callback_url: str = "http://127.0.0.1:8081/v1/webhooks/sms/dlr"
    sms_dlr_token: str = "dev-dlr-token"
    sandbox_dlr_delay: Annotated[float, msgspec.Meta(ge=0)] = 0.2
    dispatch_lease_seconds: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    sms_retry_delays: list[Annotated[float, msgspec.Meta(gt=0)]] = msgspec.field(
        default_factory=_default_retry_delays)
    sms_routes: RoutingTable | None = None
    """Carrier routes (``SMS_ROUTES`` JSON, see ``routes.py``); unset: ``SMS_CARRIER_URL`` alone."""
    otp_prefetch: Annotated[int, msgspec.Meta(ge=1)] = 20
    """Unacked OTPs per process on the OTP lane (``sms-dispatcher.send.otp``)."""
    sms_processing_hold_seconds: Annotated[float, msgspec.Meta(ge=0, le=5)] = 0.2
    """How long a message's PROCESSING event waits for its SENT or FAILED to go out with it (one
    timeline write instead of two); a slower carrier gets PROCESSING on its own after this."""
    sms_event_pairs: bool = True
    """PROCESSING and the SENT or FAILED that came within the hold go out as one ``StatusEvents``
    message, and so do the status events of several messages published while another publish
    awaits its confirm (False: one message each, for a rolling upgrade whose reporting does not
    read ``StatusEvents`` yet)."""

    def routing(self) -> RoutingTable:
        """``SMS_ROUTES``, or the single HTTP route of ``SMS_CARRIER_URL`` (none if that is empty)."""
        if self.sms_routes is not None:
            return self.sms_routes
        return legacy_table(self.sms_carrier_url, self.sms_carrier_token, self.sms_carrier_timeout)

    @property
    def lease_recheck_seconds(self) -> float:
        """How long a message whose claim is held by a live lease waits before it is looked at again."""
        return self.dispatch_lease_seconds

    def delay_steps(self) -> list[float]:
        """Every delay queue the service uses on ``sms-dispatcher.send`` (retries and lease re-checks)."""
        return sorted({*self.sms_retry_delays, self.lease_recheck_seconds})
