"""WhatsApp: sends (text or an approved template) and batches, reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from .._core import (
    AsyncResource,
    Call,
    Endpoint,
    Paginated,
    SyncResource,
    data_of,
    page_of,
    query,
    segment,
)
from .._transport import AsyncTransport, SyncTransport
from ..models import (
    BatchResult,
    Conversation,
    ConversationDetail,
    Page,
    TimelineEntry,
    WhatsAppMessage,
)
from ..params import WhatsAppSend, WhatsAppTemplate
from ._messages import MessageStatus, batch_call, get_call, list_call, send_call, timeline_call


def send(*, to: str, text: str | None = None, template: WhatsAppTemplate | None = None,
         metadata: Mapping[str, str] | None = None, external_id: str | None = None,
         idempotency_key: str | None = None, extra_body: Mapping[str, Any] | None = None
         ) -> Call[WhatsAppMessage]:
    """Queue one WhatsApp message (``POST /v1/whatsapp/send``): exactly one of ``text`` (inside the
    24-hour window) and ``template``. Returns the stored message (status ``QUEUED``)."""
    params = WhatsAppSend(to=to, text=text, template=template,
                          metadata=dict(metadata) if metadata is not None else None,
                          external_id=external_id)
    return send_call("whatsapp", WhatsAppMessage, params, idempotency_key=idempotency_key,
                     extra_body=extra_body)


def batch(messages: Sequence[WhatsAppSend | Mapping[str, Any]], *,
          idempotency_key: str | None = None) -> Call[BatchResult[WhatsAppMessage]]:
    """Queue up to 1,000 WhatsApp messages (``POST /v1/whatsapp/batch``), each on its own."""
    return batch_call("whatsapp", WhatsAppMessage, messages, idempotency_key=idempotency_key)


def list_messages(*, status: MessageStatus | None = None, query: str | None = None,
                  date_from: datetime | str | None = None, date_to: datetime | str | None = None,
                  page: int | None = None, page_size: int | None = None) -> Call[Page[WhatsAppMessage]]:
    """One page of the tenant's WhatsApp messages, newest first (``GET /v1/whatsapp``)."""
    return list_call("whatsapp", WhatsAppMessage, status=status, query_text=query,
                     date_from=date_from, date_to=date_to, page=page, page_size=page_size)


def iter_messages(*, status: MessageStatus | None = None, query: str | None = None,
                  date_from: datetime | str | None = None, date_to: datetime | str | None = None,
                  page_size: int | None = 100) -> Call[Page[WhatsAppMessage]]:
    """Every WhatsApp message matching the filters, newest first, a page at a time."""
    return list_messages(status=status, query=query, date_from=date_from, date_to=date_to,
                         page_size=page_size)


def get(message_id: str) -> Call[WhatsAppMessage]:
    """One WhatsApp message (``GET /v1/whatsapp/{id}``)."""
    return get_call("whatsapp", WhatsAppMessage, message_id)


def timeline(message_id: str) -> Call[list[TimelineEntry]]:
    """Every recorded event of one WhatsApp message, oldest first."""
    return timeline_call("whatsapp", message_id)


def list_conversations(*, page: int | None = None, page_size: int | None = None
                       ) -> Call[Page[Conversation]]:
    """Contacts who wrote to the tenant's line, the most recently active first
    (``GET /v1/whatsapp/conversations``)."""
    return Call("GET", "/v1/whatsapp/conversations", page_of(Conversation),
                params=query(page=page, pageSize=page_size))


def get_conversation(wa_id: str, *, limit: int | None = None) -> Call[ConversationDetail]:
    """One contact's inbound messages and the tenant's outbound ones to it, oldest first (the newest
    ``limit`` of each; default 50), and whether it opted out."""
    return Call("GET", f"/v1/whatsapp/conversations/{segment(wa_id)}", data_of(ConversationDetail),
                params=query(limit=limit))


class _ConversationOps:
    list = Endpoint(list_conversations)
    list_all = Paginated(list_conversations)
    get = Endpoint(get_conversation)


class Conversations(_ConversationOps, SyncResource):
    """``/v1/whatsapp/conversations``."""


class AsyncConversations(_ConversationOps, AsyncResource):
    """``/v1/whatsapp/conversations``."""


class _WhatsAppOps:
    send = Endpoint(send)
    batch = Endpoint(batch)
    list = Endpoint(list_messages)
    list_all = Paginated(iter_messages)
    get = Endpoint(get)
    timeline = Endpoint(timeline)


class WhatsApp(_WhatsAppOps, SyncResource):
    """``/v1/whatsapp``: send, batch, list (``list_all`` iterates every page), get, timeline;
    ``conversations``."""

    def __init__(self, transport: SyncTransport) -> None:
        super().__init__(transport)
        self.conversations = Conversations(transport)


class AsyncWhatsApp(_WhatsAppOps, AsyncResource):
    """``/v1/whatsapp``: send, batch, list (``list_all`` iterates every page), get, timeline;
    ``conversations``."""

    def __init__(self, transport: AsyncTransport) -> None:
        super().__init__(transport)
        self.conversations = AsyncConversations(transport)
