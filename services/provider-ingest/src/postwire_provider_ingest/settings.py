"""provider-ingest's settings, read from the environment (``SMS_DLR_TOKEN`` fills ``sms_dlr_token``)."""

from __future__ import annotations

from postwire_platform.settings import CommonSettings


class ProviderIngestSettings(CommonSettings, frozen=True, kw_only=True):
    """Callback tokens and which endpoints are switched on."""

    service_name: str = "provider-ingest"
    http_port: int = 8081
    sms_dlr_token: str = "dev-dlr-token"
    sms_dlr_enabled: bool = True
