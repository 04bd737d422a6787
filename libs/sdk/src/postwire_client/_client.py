"""The two entry points: :class:`Postwire` (blocking) and :class:`AsyncPostwire` (asyncio)."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Literal, Self

import httpx

from ._transport import DEFAULT_TIMEOUT, AsyncTransport, Settings, SyncTransport
from .resources.account import (
    Account,
    ApiKeys,
    AsyncAccount,
    AsyncApiKeys,
    AsyncStatsResource,
    StatsResource,
)
from .resources.emails import AsyncEmails, AsyncSuppressions, Emails, Suppressions
from .resources.sms import AsyncSms, Sms
from .resources.templates import AsyncDomains, AsyncTemplates, Domains, Templates
from .resources.webhook_endpoints import AsyncWebhookEndpoints, WebhookEndpoints
from .resources.whatsapp import AsyncWhatsApp, WhatsApp
from .retries import RetryPolicy
from .stream import AsyncStream, Stream

Channel = Literal["email", "sms", "whatsapp"]


class Postwire:
    """A blocking client for the Postwire API::

        from postwire_client import Postwire

        with Postwire(api_key="pw_test_…") as client:     # or POSTWIRE_API_KEY / POSTWIRE_BASE_URL
            sms = client.sms.send(to="+14155552671", body="Your code is 123456", sender_id="Acme")
            print(sms.id, sms.status)

    ``base_url`` defaults to ``$POSTWIRE_BASE_URL``, else ``http://127.0.0.1:8080``. Sends carry a fresh
    idempotency key each (reused on their retries). 429 and 503 answers are retried with backoff
    honouring ``Retry-After`` (see :class:`~postwire_client.retries.RetryPolicy`); errors raise
    :class:`~postwire_client.errors.APIError` subclasses.
    """

    def __init__(self, api_key: str | None = None, *, base_url: str | None = None,
                 timeout: float | httpx.Timeout = DEFAULT_TIMEOUT, max_retries: int | None = None,
                 retry: RetryPolicy | None = None, headers: Mapping[str, str] | None = None,
                 http_client: httpx.Client | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._settings = Settings(api_key, base_url, retry, max_retries, headers)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout, transport=transport)
        core = SyncTransport(self._settings, self._http)
        self.sms = Sms(core)
        self.emails = Emails(core)
        self.whatsapp = WhatsApp(core)
        self.suppressions = Suppressions(core)
        self.api_keys = ApiKeys(core)
        self.stats = StatsResource(core)
        self.webhook_endpoints = WebhookEndpoints(core)
        self.templates = Templates(core)
        self.domains = Domains(core)
        self.account = Account(core)

    @property
    def base_url(self) -> str:
        return self._settings.base_url

    def stream(self, *, channel: Channel | None = None, reconnect: bool = True) -> Stream:
        """The live stream of the tenant's status changes (of the channels the key may read, or of
        ``channel`` only)."""
        return Stream(self._settings, channel=channel, reconnect=reconnect)

    def close(self) -> None:
        """Close the connection pool (unless it was passed in as ``http_client``)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class AsyncPostwire:
    """The asyncio client; the same resources and methods as :class:`Postwire`, awaited::

        async with AsyncPostwire() as client:
            sms = await client.sms.send(to="+14155552671", body="Hi", sender_id="Acme")
            async for message in client.sms.list_all(status="FAILED"):
                ...
            async for event in client.stream():
                print(event.message_id, event.status)
    """

    def __init__(self, api_key: str | None = None, *, base_url: str | None = None,
                 timeout: float | httpx.Timeout = DEFAULT_TIMEOUT, max_retries: int | None = None,
                 retry: RetryPolicy | None = None, headers: Mapping[str, str] | None = None,
                 http_client: httpx.AsyncClient | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._settings = Settings(api_key, base_url, retry, max_retries, headers)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout, transport=transport)
        core = AsyncTransport(self._settings, self._http)
        self.sms = AsyncSms(core)
        self.emails = AsyncEmails(core)
        self.whatsapp = AsyncWhatsApp(core)
        self.suppressions = AsyncSuppressions(core)
        self.api_keys = AsyncApiKeys(core)
        self.stats = AsyncStatsResource(core)
        self.webhook_endpoints = AsyncWebhookEndpoints(core)
        self.templates = AsyncTemplates(core)
        self.domains = AsyncDomains(core)
        self.account = AsyncAccount(core)

    @property
    def base_url(self) -> str:
        return self._settings.base_url

    def stream(self, *, channel: Channel | None = None, reconnect: bool = True) -> AsyncStream:
        """The live stream of the tenant's status changes (of the channels the key may read, or of
        ``channel`` only)."""
        return AsyncStream(self._settings, channel=channel, reconnect=reconnect)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()
