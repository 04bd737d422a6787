"""The tenant's configuration: API keys, stats, the WhatsApp line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Literal

from .._core import (
    AsyncResource,
    Call,
    Endpoint,
    Paginated,
    SyncResource,
    body,
    data_of,
    nothing,
    page_of,
    query,
    segment,
)
from .._transport import AsyncTransport, SyncTransport
from .._unset import UNSET, Unset, changes
from ..models import ApiKey, CreatedApiKey, Page, Stats, WhatsAppCloudLine

Channel = Literal["email", "sms", "whatsapp"]


# --- API keys ----------------------------------------------------------------------------------------

def create_api_key(*, scopes: Sequence[str], name: str | None = None,
                   mode: Literal["live", "test"] | None = None,
                   rate_limit: tuple[int, int] | None = None,
                   extra_body: Mapping[str, Any] | None = None) -> Call[CreatedApiKey]:
    """Create a key (``POST /v1/api-keys``; ``keys:write``); its ``key`` is in this answer only.

    A key may only grant scopes its creator holds; ``mode`` defaults to ``test``; ``rate_limit``
    (requests per minute, per second) needs an ``admin`` key."""
    payload: dict[str, Any] = {"scopes": list(scopes)}
    if name is not None:
        payload["name"] = name
    if mode is not None:
        payload["mode"] = mode
    if rate_limit is not None:
        payload["rateLimit"] = {"perMinute": rate_limit[0], "perSecond": rate_limit[1]}
    return Call("POST", "/v1/api-keys", data_of(CreatedApiKey), content=body(payload, extra_body))


def list_api_keys(*, include_revoked: bool = True, page: int | None = None,
                  page_size: int | None = None) -> Call[Page[ApiKey]]:
    """The tenant's keys, newest first, by prefix only (``GET /v1/api-keys``)."""
    return Call("GET", "/v1/api-keys", page_of(ApiKey),
                params=query(revoked=None if include_revoked else False, page=page,
                             pageSize=page_size))


def revoke_api_key(key_id: str) -> Call[None]:
    """Revoke a key (``DELETE /v1/api-keys/{id}``); revoking twice is fine."""
    return Call("DELETE", f"/v1/api-keys/{segment(key_id)}", nothing)


class _ApiKeyOps:
    create = Endpoint(create_api_key)
    list = Endpoint(list_api_keys)
    list_all = Paginated(list_api_keys)
    revoke = Endpoint(revoke_api_key)


class ApiKeys(_ApiKeyOps, SyncResource):
    """``/v1/api-keys``."""


class AsyncApiKeys(_ApiKeyOps, AsyncResource):
    """``/v1/api-keys``."""


# --- stats -------------------------------------------------------------------------------------------

def get_stats(*, channel: Channel | None = None, date_from: date | str | None = None,
              date_to: date | str | None = None, mode: Literal["live", "test"] | None = None
              ) -> Call[Stats]:
    """Counts per status, customer events and accept→sent/delivered latency by channel and UTC day
    (``GET /v1/stats``; ``stats:read``). Default window: the last 7 days; at most 92."""
    return Call("GET", "/v1/stats", data_of(Stats),
                params=query(channel=channel, dateFrom=date_from, dateTo=date_to, mode=mode))


class _StatsOps:
    get = Endpoint(get_stats)


class StatsResource(_StatsOps, SyncResource):
    """``/v1/stats`` (email-only figures: ``client.emails.stats``)."""


class AsyncStatsResource(_StatsOps, AsyncResource):
    """``/v1/stats`` (email-only figures: ``client.emails.stats``)."""


# --- WhatsApp line -----------------------------------------------------------------------------------

def get_whatsapp_cloud_line() -> Call[WhatsAppCloudLine]:
    """The tenant's Meta line, if any (``GET /v1/account/whatsapp-cloud-line``; ``members:read``)."""
    return Call("GET", "/v1/account/whatsapp-cloud-line", data_of(WhatsAppCloudLine))


def update_whatsapp_cloud_line(*, phone_number_id: str | Unset | None = UNSET,
                               access_token: str | Unset | None = UNSET) -> Call[WhatsAppCloudLine]:
    """Set the tenant's own Meta ``phone_number_id`` and/or access token; ``None`` clears a value
    (``PATCH /v1/account/whatsapp-cloud-line``; ``members:write``). A phone number id held by another
    tenant raises ``ConflictError`` (``WHATSAPP_PHONE_NUMBER_ID_IN_USE``)."""
    payload = changes(whatsappPhoneNumberId=phone_number_id, whatsappAccessToken=access_token)
    if not payload:
        raise ValueError("pass phone_number_id and/or access_token")
    return Call("PATCH", "/v1/account/whatsapp-cloud-line", data_of(WhatsAppCloudLine),
                content=body(payload))


class _WhatsAppLineOps:
    get = Endpoint(get_whatsapp_cloud_line)
    update = Endpoint(update_whatsapp_cloud_line)


class WhatsAppCloudLineResource(_WhatsAppLineOps, SyncResource):
    """``/v1/account/whatsapp-cloud-line``."""


class AsyncWhatsAppCloudLineResource(_WhatsAppLineOps, AsyncResource):
    """``/v1/account/whatsapp-cloud-line``."""


class Account(SyncResource):
    """``/v1/account``."""

    def __init__(self, transport: SyncTransport) -> None:
        super().__init__(transport)
        self.whatsapp_cloud_line = WhatsAppCloudLineResource(transport)


class AsyncAccount(AsyncResource):
    """``/v1/account``."""

    def __init__(self, transport: AsyncTransport) -> None:
        super().__init__(transport)
        self.whatsapp_cloud_line = AsyncWhatsAppCloudLineResource(transport)
