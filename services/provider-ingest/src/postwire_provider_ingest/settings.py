"""provider-ingest's settings, read from the environment (``SMS_DLR_TOKEN`` fills ``sms_dlr_token``)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from postwire_platform.settings import CommonSettings
from postwire_sms.keywords import Keywords
from postwire_whatsapp import keywords


def _opt_out() -> list[str]:
    return sorted(keywords.OPT_OUT)


def _opt_in() -> list[str]:
    return sorted(keywords.OPT_IN)


class ProviderIngestSettings(CommonSettings, frozen=True, kw_only=True):
    """Callback tokens and which endpoints are switched on."""

    service_name: str = "provider-ingest"
    http_port: int = 8081
    sms_dlr_token: str = "dev-dlr-token"
    sms_dlr_enabled: bool = True
    # email (issue 4): MTA feedback signed with EMAIL_FEEDBACK_SECRET; tracking tokens signed by
    # email-dispatcher with EMAIL_TRACKING_SECRET
    email_feedback_secret: str = "dev-feedback-secret"
    email_feedback_enabled: bool = True
    email_tracking_secret: str = "dev-tracking-secret"
    email_tracking_enabled: bool = True
    sms_inbound_token: str = "dev-inbound-token"
    sms_inbound_enabled: bool = True
    sms_provider_secret: str = ""
    """HMAC secret of ``/v1/webhooks/sms/provider``; with ``sms_provider_secrets`` (JSON list, for
    rotation) every one verifies; none at all: every request is refused."""
    sms_provider_secrets: list[str] = []
    sms_provider_enabled: bool = True
    sms_provider_tolerance: Annotated[float, msgspec.Meta(gt=0)] = 300.0
    """Seconds a signed request's timestamp may be away from now (the replay window)."""
    sms_keywords: Keywords | None = None
    """Opt-out/opt-in/help keywords (``SMS_KEYWORDS`` JSON, per sender); unset: the standard lists."""
    whatsapp_webhook_enabled: bool = True
    """``GET``/``POST /v1/webhooks/whatsapp``; off: 404."""
    whatsapp_verify_token: str = ""
    """The verify token of Meta's subscription handshake; empty: every handshake is refused."""
    whatsapp_app_secret: str = ""
    """The App Secret that signs notifications (``X-Hub-Signature-256``); empty: every one is refused."""
    whatsapp_line_map: dict[str, str] = {}
    """``{"<phone_number_id>": "<tenant id>"}`` for numbers that are not a tenant's own line."""
    whatsapp_default_tenant_id: str = ""
    """The tenant of notifications on any other number (the platform's default line)."""
    whatsapp_line_cache_seconds: Annotated[float, msgspec.Meta(ge=0)] = 5.0
    whatsapp_opt_out_keywords: list[str] = msgspec.field(default_factory=_opt_out)
    whatsapp_opt_in_keywords: list[str] = msgspec.field(default_factory=_opt_in)
    whatsapp_conversation_max_entries: Annotated[int, msgspec.Meta(ge=1)] = 1000
    """Inbound messages kept per conversation (the oldest go first)."""
    status_groups: bool = True
    """Status events of concurrent callbacks published while an earlier publish awaits its confirm
    go out together as one ``StatusEvents`` (False: one message each, for a rolling upgrade whose
    reporting does not read ``StatusEvents`` yet)."""
