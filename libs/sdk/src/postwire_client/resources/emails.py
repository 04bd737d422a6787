"""Email: sends (content or a template) and batches, reads, email stats, suppressions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
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
)
from ..models import BatchResult, EmailMessage, EmailStats, Page, Suppression, TimelineEntry
from ..params import EmailSend
from ._messages import MessageStatus, batch_call, get_call, list_call, send_call, timeline_call


def send(*, from_: str, to: str | Sequence[str], subject: str | None = None, html: str | None = None,
         text: str | None = None, cc: Sequence[str] | None = None, bcc: Sequence[str] | None = None,
         reply_to: str | None = None, headers: Mapping[str, str] | None = None,
         template_id: str | None = None, template_version: int | None = None,
         variables: Mapping[str, Any] | None = None, metadata: Mapping[str, str] | None = None,
         external_id: str | None = None, track_opens: bool | None = None,
         track_clicks: bool | None = None, idempotency_key: str | None = None,
         extra_body: Mapping[str, Any] | None = None) -> Call[EmailMessage]:
    """Queue an email (``POST /v1/emails/send``): ``subject`` with ``html`` and/or ``text`` (CSS is
    inlined, a text part derived), or a ``template_id`` with ``variables``. Each recipient becomes a
    message of its own: the answer is the first, ``messages`` lists them all (status ``QUEUED``)."""
    params = EmailSend(from_=from_, to=[to] if isinstance(to, str) else list(to),
                       cc=list(cc) if cc is not None else None,
                       bcc=list(bcc) if bcc is not None else None, subject=subject, html=html,
                       text=text, reply_to=reply_to,
                       headers=dict(headers) if headers is not None else None,
                       template_id=template_id, template_version=template_version,
                       variables=dict(variables) if variables is not None else None,
                       metadata=dict(metadata) if metadata is not None else None,
                       external_id=external_id, track_opens=track_opens, track_clicks=track_clicks)
    return send_call("emails", EmailMessage, params, idempotency_key=idempotency_key,
                     extra_body=extra_body)


def batch(messages: Sequence[EmailSend | Mapping[str, Any]], *,
          idempotency_key: str | None = None) -> Call[BatchResult[EmailMessage]]:
    """Queue up to 1,000 emails (``POST /v1/emails/batch``), each accepted or refused on its own."""
    return batch_call("emails", EmailMessage, messages, idempotency_key=idempotency_key)


def list_messages(*, status: MessageStatus | None = None, query: str | None = None,
                  date_from: datetime | str | None = None, date_to: datetime | str | None = None,
                  page: int | None = None, page_size: int | None = None) -> Call[Page[EmailMessage]]:
    """One page of the tenant's emails, newest first (``GET /v1/emails``); ``query`` matches the
    recipients, the subject and the external id."""
    return list_call("emails", EmailMessage, status=status, query_text=query, date_from=date_from,
                     date_to=date_to, page=page, page_size=page_size)


def iter_messages(*, status: MessageStatus | None = None, query: str | None = None,
                  date_from: datetime | str | None = None, date_to: datetime | str | None = None,
                  page_size: int | None = 100) -> Call[Page[EmailMessage]]:
    """Every email matching the filters, newest first, a page at a time."""
    return list_messages(status=status, query=query, date_from=date_from, date_to=date_to,
                         page_size=page_size)


def get(message_id: str) -> Call[EmailMessage]:
    """One email (``GET /v1/emails/{id}``)."""
    return get_call("emails", EmailMessage, message_id)


def timeline(message_id: str) -> Call[list[TimelineEntry]]:
    """Every recorded event of one email (sent, delivered, opened, bounced…), oldest first."""
    return timeline_call("emails", message_id)


def email_stats(*, date_from: date | str | None = None, date_to: date | str | None = None,
                mode: Literal["live", "test"] | None = None) -> Call[EmailStats]:
    """Email counts, engagement (opens, bounces, complaints) and latency by day
    (``GET /v1/emails/stats``; ``stats:read``)."""
    return Call("GET", "/v1/emails/stats", data_of(EmailStats),
                params=query(dateFrom=date_from, dateTo=date_to, mode=mode))


# --- suppressions ------------------------------------------------------------------------------------

def list_suppressions(*, email: str | None = None,
                      reason: Literal["hard_bounce", "spam_complaint", "manual", "unsubscribe"]
                      | None = None, page: int | None = None,
                      page_size: int | None = None) -> Call[Page[Suppression]]:
    """Addresses the tenant does not send to, newest first (``GET /v1/suppressions``; ``read:email``);
    ``email`` looks one address up."""
    return Call("GET", "/v1/suppressions", page_of(Suppression),
                params=query(email=email, reason=reason, page=page, pageSize=page_size))


def add_suppression(*, email: str, reason: Literal["manual", "unsubscribe"] | None = None
                    ) -> Call[Suppression]:
    """Suppress an address (``POST /v1/suppressions``; ``send:email``): later sends to it end FAILED
    ``suppressed``. ``ConflictError`` when it already is."""
    payload: dict[str, Any] = {"email": email}
    if reason is not None:
        payload["reason"] = reason
    return Call("POST", "/v1/suppressions", data_of(Suppression), content=body(payload))


def remove_suppression(*, email: str) -> Call[None]:
    """Lift a suppression (``DELETE /v1/suppressions?email=``); ``NotFoundError`` when there is none."""
    return Call("DELETE", "/v1/suppressions", nothing, params=query(email=email))


class _EmailOps:
    send = Endpoint(send)
    batch = Endpoint(batch)
    list = Endpoint(list_messages)
    list_all = Paginated(iter_messages)
    get = Endpoint(get)
    timeline = Endpoint(timeline)
    stats = Endpoint(email_stats)


class _SuppressionOps:
    list = Endpoint(list_suppressions)
    list_all = Paginated(list_suppressions)
    add = Endpoint(add_suppression)
    remove = Endpoint(remove_suppression)


class Suppressions(_SuppressionOps, SyncResource):
    """``/v1/suppressions``."""


class AsyncSuppressions(_SuppressionOps, AsyncResource):
    """``/v1/suppressions``."""


class Emails(_EmailOps, SyncResource):
    """``/v1/emails``: send, batch, list (``list_all`` iterates every page), get, timeline, stats."""


class AsyncEmails(_EmailOps, AsyncResource):
    """``/v1/emails``: send, batch, list (``list_all`` iterates every page), get, timeline, stats."""
