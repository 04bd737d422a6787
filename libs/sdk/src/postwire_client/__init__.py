"""Typed Python client for the Postwire API: ``Postwire`` (blocking) and ``AsyncPostwire`` (asyncio).

Errors are in :mod:`postwire_client.errors`, answer types in :mod:`postwire_client.models`, batch item
types in :mod:`postwire_client.params`, webhook signature checks in :mod:`postwire_client.webhooks`.
"""

from __future__ import annotations

from ._client import AsyncPostwire, Postwire
from ._unset import UNSET
from ._version import __version__
from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    PostwireError,
    RateLimitError,
    ResponseDecodeError,
    ServiceUnavailableError,
    TenantSuspendedError,
    ValidationError,
    WebhookVerificationError,
)
from .models import (
    BatchItem,
    BatchResult,
    EmailMessage,
    Message,
    Page,
    SmsMessage,
    StreamEvent,
    TimelineEntry,
    WhatsAppMessage,
)
from .params import EmailSend, SmsSend, WhatsAppSend, WhatsAppTemplate
from .retries import RetryPolicy
from .webhooks import Webhook, WebhookEvent

__all__ = [
    "UNSET",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AsyncPostwire",
    "AuthenticationError",
    "BadRequestError",
    "BatchItem",
    "BatchResult",
    "ConflictError",
    "EmailMessage",
    "EmailSend",
    "InternalServerError",
    "Message",
    "NotFoundError",
    "Page",
    "PermissionDeniedError",
    "Postwire",
    "PostwireError",
    "RateLimitError",
    "ResponseDecodeError",
    "RetryPolicy",
    "ServiceUnavailableError",
    "SmsMessage",
    "SmsSend",
    "StreamEvent",
    "TenantSuspendedError",
    "TimelineEntry",
    "ValidationError",
    "Webhook",
    "WebhookEvent",
    "WebhookVerificationError",
    "WhatsAppMessage",
    "WhatsAppSend",
    "WhatsAppTemplate",
    "__version__",
]
