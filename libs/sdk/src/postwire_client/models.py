"""What the API answers, as typed, immutable msgspec Structs (snake_case here, camelCase on the wire).

Fields the server may add later are ignored, and most fields have defaults, so a newer server does not
break an older client. Times are timezone-aware ``datetime`` objects in UTC.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")


class Model(msgspec.Struct, rename="camel", kw_only=True, frozen=True):
    """The base of every answer type."""


class Envelope(Model, Generic[T], frozen=True, kw_only=True):
    """``{"success": true, "data": …}``."""

    data: T
    success: bool = True


class Pagination(Model, frozen=True, kw_only=True):
    page: int
    page_size: int
    total: int
    total_pages: int
    has_next: bool


class Page(Model, Generic[T], frozen=True, kw_only=True):
    """One page of a list: ``data`` and where it is in the whole."""

    data: list[T]
    pagination: Pagination


# --- messages -----------------------------------------------------------------------------------------

class Message(Model, frozen=True, kw_only=True):
    """What every channel's message has. ``status``: QUEUED, PROCESSING, SENT, DELIVERED, READ, FAILED."""

    id: str
    channel: str
    status: str
    metadata: dict[str, str] = {}
    external_id: str | None = None
    live: bool = False
    provider_message_id: str | None = None
    error_code: str | None = None
    error_reason: str | None = None
    accepted_at: datetime | None = None
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    failed_at: datetime | None = None
    updated_at: datetime | None = None


class SmsMessage(Message, frozen=True, kw_only=True):
    """An SMS. ``body`` is absent from a send's answer (it is in ``GET /v1/sms/{id}``)."""

    to: str
    sender_id: str | None = None
    body: str | None = None
    flow: str | None = None
    segments: int | None = None
    encoding: str | None = None


class EmailRecipient(Model, frozen=True, kw_only=True):
    """One of the messages an email send made: every recipient gets its own."""

    id: str
    to: str
    recipient_type: str | None = None
    """``to``, ``cc`` or ``bcc``."""
    status: str | None = None


class EmailMessage(Message, frozen=True, kw_only=True):
    """An email to one recipient. A send to several (``to``, ``cc``, ``bcc``) makes one message per
    recipient: its answer is the first, with ``messages`` listing them all (same ``group_id``)."""

    to: str | list[str]
    from_: str | None = msgspec.field(default=None, name="from")
    subject: str | None = None
    reply_to: str | None = None
    recipient_type: str | None = None
    group_id: str | None = None
    template_id: str | None = None
    template_version: int | None = None
    track_opens: bool | None = None
    track_clicks: bool | None = None
    submitted_via: str | None = None
    messages: list[EmailRecipient] | None = None


class WhatsAppTemplateRef(Model, frozen=True, kw_only=True):
    name: str
    language: str
    body_parameters: list[str] = []


class WhatsAppMessage(Message, frozen=True, kw_only=True):
    to: str
    text: str | None = None
    template: WhatsAppTemplateRef | None = None


class Conversation(Model, frozen=True, kw_only=True):
    """A contact who wrote to the tenant's WhatsApp line (``wa_id``: the number's digits)."""

    wa_id: str | None = None
    contact_name: str | None = None
    phone_number_id: str | None = None
    last_inbound_at: datetime | None = None
    last_inbound_text: str | None = None
    opted_out: bool = False
    created_at: datetime | None = None


class ConversationEntry(Model, frozen=True, kw_only=True):
    """A message of a conversation: ``inbound`` (from the contact) or ``outbound`` (one of yours)."""

    direction: str
    at: datetime | None = None
    id: str | None = None
    """The message id of an outbound entry."""
    provider_message_id: str | None = None
    type: str | None = None
    text: str | None = None
    template: str | None = None
    keyword: str | None = None
    status: str | None = None


class ConversationDetail(Conversation, frozen=True, kw_only=True):
    messages: list[ConversationEntry] = []
    """Oldest first."""


class TimelineEntry(Model, frozen=True, kw_only=True):
    """One recorded event of a message (the raw provider payload included)."""

    status: str
    occurred_at: datetime | None = None
    recorded_at: datetime | None = None
    source: str | None = None
    provider_message_id: str | None = None
    provider_status: str | None = None
    error_code: str | None = None
    error_reason: str | None = None
    detail: dict[str, Any] = {}
    raw: Any = None


class BatchItem(Model, Generic[T], frozen=True, kw_only=True):
    """One item of a batch: accepted (``success``, ``data``) or refused (the SPEC error fields)."""

    index: int
    success: bool
    data: T | None = None
    error: str | None = None
    message: str | None = None
    code: int | None = None
    field: str | None = None


class BatchResult(Model, Generic[T], frozen=True, kw_only=True):
    accepted: int
    rejected: int
    results: list[BatchItem[T]]


# --- account configuration -------------------------------------------------------------------------------

class RateLimit(Model, frozen=True, kw_only=True):
    """A key's own rate limit (without one, the gateway's default: 100 a minute, 20 a second)."""

    per_minute: int
    per_second: int


class ApiKey(Model, frozen=True, kw_only=True):
    """An API key as listed: its display ``prefix``, never the key itself."""

    id: str
    name: str = ""
    prefix: str | None = None
    scopes: list[str] = []
    mode: str | None = None
    """``live`` or ``test``."""
    created_at: datetime | None = None
    revoked_at: datetime | None = None
    rate_limit: RateLimit | None = None


class CreatedApiKey(ApiKey, frozen=True, kw_only=True):
    """A new key: ``key`` is shown in this answer only."""

    key: str


class SenderIdRequest(Model, frozen=True, kw_only=True):
    """A sender id and where its request stands (``GET /v1/sms/sender-ids`` lists the approved ones)."""

    id: str
    sender_id: str
    status: str
    """``pending``, ``approved`` or ``rejected``."""
    tenant_id: str | None = None
    purpose: str = ""
    countries: list[str] = []
    reason: str | None = None
    """Why it was rejected (or the reviewer's note)."""
    created_at: datetime | None = None
    reviewed_at: datetime | None = None


SenderId = SenderIdRequest
"""An approved sender id is listed in the same shape as its request."""


class OptOut(Model, frozen=True, kw_only=True):
    """A handset that opted out of the tenant's SMS (sends to it end FAILED ``opted_out``)."""

    phone: str
    source: str | None = None
    """``api``, ``inbound`` (a STOP reply), …"""
    keyword: str | None = None
    created_at: datetime | None = None


class Suppression(Model, frozen=True, kw_only=True):
    """An email address the tenant does not send to (sends end FAILED ``suppressed``)."""

    email: str
    reason: str | None = None
    """``hard_bounce``, ``spam_complaint``, ``manual`` or ``unsubscribe``."""
    source: str | None = None
    message_id: str | None = None
    created_at: datetime | None = None


class WhatsAppCloudLine(Model, frozen=True, kw_only=True):
    """The tenant's own Meta line, or the platform default when none is set. The token is never
    shown: ``access_token_hint`` has its last characters at most."""

    whatsapp_phone_number_id: str | None = None
    uses_platform_default: bool = True
    platform_line_configured: bool = False
    access_token_configured: bool = False
    access_token_hint: str | None = None
    needs_attention: bool = False
    """Meta refused the token (error 190): store a new one."""
    attention_reason: str | None = None
    updated_at: datetime | None = None


# --- webhooks ----------------------------------------------------------------------------------------

class WebhookEndpoint(Model, frozen=True, kw_only=True):
    """A customer endpoint (never with its secret). ``mode`` is that of the key that made it: a
    ``test`` endpoint never receives live events. An endpoint that answered 410 is disabled, with
    ``disabled_reason``."""

    id: str
    url: str
    events: list[str] = msgspec.field(default_factory=lambda: ["*"])
    description: str = ""
    enabled: bool = True
    mode: str | None = None
    disabled_reason: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    secret_rotated_at: datetime | None = None
    previous_secret_expires_at: datetime | None = None
    """Until then deliveries carry a signature with the previous secret too."""


class WebhookEndpointWithSecret(WebhookEndpoint, frozen=True, kw_only=True):
    """An endpoint as created or rotated: ``secret`` (``whsec_…``) is shown in this answer only."""

    secret: str


class WebhookAttempt(Model, frozen=True, kw_only=True):
    """One try to deliver one event to one endpoint."""

    id: str
    endpoint_id: str | None = None
    webhook_id: str | None = None
    """The ``webhook-id`` header: the same on every retry and replay of the delivery."""
    event_id: str | None = None
    event_type: str | None = None
    message_id: str | None = None
    attempt: int | None = None
    trigger: str | None = None
    """``event``, ``replay`` or ``test``."""
    at: datetime | None = None
    status_code: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    outcome: str | None = None
    """``delivered``, ``failed`` or ``retrying``."""


class WebhookTestResult(Model, frozen=True, kw_only=True):
    """A test event on its way (202): its attempt shows in ``attempts`` under ``webhook_id``."""

    command_id: str | None = None
    event_id: str | None = None
    event_type: str | None = None
    webhook_id: str | None = None


class WebhookReplay(Model, frozen=True, kw_only=True):
    """A replay on its way (202): of one delivery (``webhook_id``) or of the failed ones ``since``."""

    command_id: str | None = None
    webhook_id: str | None = None
    since: datetime | None = None


# --- stats -------------------------------------------------------------------------------------------

class StatusCounts(Model, frozen=True, kw_only=True):
    """Messages counted once per status they reached (``accepted`` = QUEUED)."""

    accepted: int = 0
    processing: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    failed: int = 0


class Latency(Model, frozen=True, kw_only=True):
    """Milliseconds from acceptance; percentiles are None without samples."""

    samples: int = 0
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None


class Latencies(Model, frozen=True, kw_only=True):
    accept_to_sent: Latency = msgspec.field(default_factory=Latency)
    accept_to_delivered: Latency = msgspec.field(default_factory=Latency)


class StatsSummary(Model, frozen=True, kw_only=True):
    counts: StatusCounts = msgspec.field(default_factory=StatusCounts)
    events: dict[str, int] = {}
    """Customer webhook event types counted (``sms_delivered``, ``email_opened``, …)."""
    latency: Latencies = msgspec.field(default_factory=Latencies)


class DayStats(StatsSummary, frozen=True, kw_only=True):
    date: date


class ChannelStats(StatsSummary, frozen=True, kw_only=True):
    channel: str
    days: list[DayStats] = []
    """Every day of the window, oldest first, zeros included."""


class Stats(Model, frozen=True, kw_only=True):
    """``GET /v1/stats``: messages by channel and UTC day of acceptance."""

    date_from: date
    date_to: date
    mode: str = "all"
    """``live``, ``test`` or ``all``."""
    totals: StatsSummary = msgspec.field(default_factory=StatsSummary)
    channels: list[ChannelStats] = []


class EmailEngagement(Model, frozen=True, kw_only=True):
    opens: int = 0
    soft_bounces: int = 0
    hard_bounces: int = 0
    bounces: int = 0
    complaints: int = 0


class EmailDayStats(DayStats, frozen=True, kw_only=True):
    engagement: EmailEngagement = msgspec.field(default_factory=EmailEngagement)


class EmailStats(StatsSummary, frozen=True, kw_only=True):
    """``GET /v1/emails/stats``: email totals over the window with engagement, and per day."""

    date_from: date
    date_to: date
    mode: str = "all"
    engagement: EmailEngagement = msgspec.field(default_factory=EmailEngagement)
    days: list[EmailDayStats] = []


# --- templates and domains (email) -------------------------------------------------------------------------

class TemplateVersion(Model, frozen=True, kw_only=True):
    version: int
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    note: str = ""
    published: bool = False
    """Whether sends without a version use this one."""
    created_at: datetime | None = None


class Template(Model, frozen=True, kw_only=True):
    """A template; ``published`` carries the content of its published version where the answer has it
    (``get``, ``publish``, ``rollback``), ``version`` the version a ``create`` made."""

    id: str
    name: str
    channel: str = "email"
    description: str = ""
    published_version: int | None = None
    latest_version: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    published: TemplateVersion | None = None
    version: TemplateVersion | None = None


class RenderedTemplate(Model, frozen=True, kw_only=True):
    """A preview: the content a send with these variables would carry."""

    version: int | None = None
    subject: str | None = None
    html: str | None = None
    text: str | None = None


class DnsRecord(Model, frozen=True, kw_only=True):
    """A record to publish: ``purpose`` is ``dkim``, ``spf`` or ``return_path``."""

    type: str
    name: str
    value: str
    purpose: str | None = None
    verified: bool = False
    note: str | None = None


class DomainCheck(Model, frozen=True, kw_only=True):
    ok: bool = False
    found: list[str] = []
    reason: str = ""


class Domain(Model, frozen=True, kw_only=True):
    """A sending domain; ``status`` is ``pending`` until its DKIM and SPF records verify."""

    id: str
    domain: str
    status: str | None = None
    dkim_selector: str | None = None
    return_path_domain: str | None = None
    return_path_verified: bool = False
    dns_records: list[DnsRecord] = []
    checks: dict[str, DomainCheck] = {}
    last_checked_at: datetime | None = None
    verified_at: datetime | None = None
    created_at: datetime | None = None


# --- the live stream ------------------------------------------------------------------------------------

class StreamEvent(Model, frozen=True, kw_only=True):
    """One status change of one of the tenant's messages, as the live stream sends it.

    ``status`` is the message's status after the event (it never moves backwards); ``event_status`` is
    what the event itself reported (events arrive late and out of order)."""

    type: str = "message_event"
    """The customer webhook event type (``sms_delivered``, ``email_opened``, …), or ``message_event``
    for a change that has none (PROCESSING, for one)."""
    event_id: str | None = None
    message_id: str | None = None
    channel: str | None = None
    status: str | None = None
    event_status: str | None = None
    occurred_at: datetime | None = None
    recipient: Any = None
    live: bool | None = None
    provider_message_id: str | None = None
    error_code: str | None = None
    error_reason: str | None = None
    metadata: dict[str, str] = {}
    detail: dict[str, Any] = {}
    channels: list[str] | None = None
    """Only in the ``ready`` frame the client consumes itself."""
