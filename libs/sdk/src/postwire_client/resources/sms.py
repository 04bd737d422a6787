"""SMS: sends and batches, reads, sender ids and their requests, opt-outs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
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
from ..models import (
    BatchResult,
    OptOut,
    Page,
    SenderId,
    SenderIdRequest,
    SmsMessage,
    TimelineEntry,
)
from ..params import SmsSend
from ._messages import MessageStatus, batch_call, get_call, list_call, send_call, timeline_call

Flow = Literal["OTP", "STANDARD"]


def send(*, to: str, body: str, sender_id: str, flow: Flow | None = None,
         metadata: Mapping[str, str] | None = None, external_id: str | None = None,
         idempotency_key: str | None = None, extra_body: Mapping[str, Any] | None = None
         ) -> Call[SmsMessage]:
    """Queue one SMS (``POST /v1/sms/send``); returns the stored message (status ``QUEUED``).

    ``sender_id`` must be approved for the tenant. A fresh idempotency key is sent (and reused on a
    retry) unless you pass your own to deduplicate across calls (kept 24 h)."""
    params = SmsSend(to=to, body=body, sender_id=sender_id, flow=flow,
                     metadata=dict(metadata) if metadata is not None else None, external_id=external_id)
    return send_call("sms", SmsMessage, params, idempotency_key=idempotency_key, extra_body=extra_body)


def batch(messages: Sequence[SmsSend | Mapping[str, Any]], *,
          idempotency_key: str | None = None) -> Call[BatchResult[SmsMessage]]:
    """Queue up to 1,000 SMS (``POST /v1/sms/batch``); each item is accepted or refused on its own."""
    return batch_call("sms", SmsMessage, messages, idempotency_key=idempotency_key)


def list_messages(*, status: MessageStatus | None = None, query: str | None = None,
                  flow: Flow | None = None, date_from: datetime | str | None = None,
                  date_to: datetime | str | None = None, page: int | None = None,
                  page_size: int | None = None) -> Call[Page[SmsMessage]]:
    """One page of the tenant's SMS, newest first (``GET /v1/sms``); ``query`` matches the recipient,
    the body and the external id; ``page_size`` at most 100."""
    return list_call("sms", SmsMessage, status=status, query_text=query, date_from=date_from,
                     date_to=date_to, page=page, page_size=page_size, flow=flow)


def iter_messages(*, status: MessageStatus | None = None, query: str | None = None,
                  flow: Flow | None = None, date_from: datetime | str | None = None,
                  date_to: datetime | str | None = None, page_size: int | None = 100
                  ) -> Call[Page[SmsMessage]]:
    """Every SMS matching the filters, newest first, fetched a page at a time."""
    return list_messages(status=status, query=query, flow=flow, date_from=date_from, date_to=date_to,
                         page_size=page_size)


def get(message_id: str) -> Call[SmsMessage]:
    """One SMS (``GET /v1/sms/{id}``); another tenant's or an unknown id raises ``NotFoundError``."""
    return get_call("sms", SmsMessage, message_id)


def timeline(message_id: str) -> Call[list[TimelineEntry]]:
    """Every recorded event of one SMS, oldest first (``GET /v1/sms/{id}/timeline``)."""
    return timeline_call("sms", message_id)


# --- sender ids ---------------------------------------------------------------------------------------

def request_sender_id(*, sender_id: str, purpose: str | None = None,
                      countries: Sequence[str] | None = None) -> Call[SenderIdRequest]:
    """Ask for a sender id (``POST /v1/sms/sender-id-requests``; ``send:sms``): 1 to 11 letters and
    digits, or a number. The operator approves or rejects it; ``ConflictError`` when it is already
    approved or pending."""
    payload: dict[str, Any] = {"senderId": sender_id}
    if purpose is not None:
        payload["purpose"] = purpose
    if countries is not None:
        payload["countries"] = list(countries)
    return Call("POST", "/v1/sms/sender-id-requests", data_of(SenderIdRequest), content=body(payload))


def list_sender_id_requests(*, status: Literal["pending", "approved", "rejected"] | None = None,
                            tenant_id: str | None = None, page: int | None = None,
                            page_size: int | None = None) -> Call[Page[SenderIdRequest]]:
    """The tenant's sender id requests (``GET /v1/sms/sender-id-requests``); with an ``admin`` key,
    every tenant's (``tenant_id`` narrows)."""
    return Call("GET", "/v1/sms/sender-id-requests", page_of(SenderIdRequest),
                params=query(status=status, tenantId=tenant_id, page=page, pageSize=page_size))


def review_sender_id_request(request_id: str, *, decision: Literal["approve", "reject"],
                             reason: str | None = None) -> Call[SenderIdRequest]:
    """Approve, or reject with a ``reason`` (``POST /v1/sms/sender-id-requests/{id}/review``; an
    ``admin`` key). ``ConflictError`` when it was already reviewed."""
    payload: dict[str, Any] = {"decision": decision}
    if reason is not None:
        payload["reason"] = reason
    return Call("POST", f"/v1/sms/sender-id-requests/{segment(request_id)}/review",
                data_of(SenderIdRequest), content=body(payload))


def list_sender_ids(*, page: int | None = None, page_size: int | None = None) -> Call[Page[SenderId]]:
    """The sender ids the tenant may send from (``GET /v1/sms/sender-ids``)."""
    return Call("GET", "/v1/sms/sender-ids", page_of(SenderId),
                params=query(page=page, pageSize=page_size))


# --- opt-outs ----------------------------------------------------------------------------------------

def list_opt_outs(*, phone: str | None = None, page: int | None = None,
                  page_size: int | None = None) -> Call[Page[OptOut]]:
    """Handsets that opted out of the tenant's SMS, newest first (``GET /v1/sms/opt-outs``;
    ``read:sms``); ``phone`` looks one number up."""
    return Call("GET", "/v1/sms/opt-outs", page_of(OptOut),
                params=query(phone=phone, page=page, pageSize=page_size))


def add_opt_out(*, phone: str) -> Call[OptOut]:
    """Opt a handset out (``POST /v1/sms/opt-outs``; ``send:sms``): later sends to it end FAILED
    ``opted_out``. ``ConflictError`` when it already is."""
    return Call("POST", "/v1/sms/opt-outs", data_of(OptOut), content=body({"phone": phone}))


def remove_opt_out(*, phone: str) -> Call[None]:
    """Opt a handset back in (``DELETE /v1/sms/opt-outs?phone=``); ``NotFoundError`` when it was not
    opted out."""
    return Call("DELETE", "/v1/sms/opt-outs", nothing, params=query(phone=phone))


class _SenderIdRequestOps:
    create = Endpoint(request_sender_id)
    list = Endpoint(list_sender_id_requests)
    list_all = Paginated(list_sender_id_requests)
    review = Endpoint(review_sender_id_request)


class _SenderIdOps:
    list = Endpoint(list_sender_ids)
    list_all = Paginated(list_sender_ids)


class _OptOutOps:
    list = Endpoint(list_opt_outs)
    list_all = Paginated(list_opt_outs)
    add = Endpoint(add_opt_out)
    remove = Endpoint(remove_opt_out)


class _SmsOps:
    send = Endpoint(send)
    batch = Endpoint(batch)
    list = Endpoint(list_messages)
    list_all = Paginated(iter_messages)
    get = Endpoint(get)
    timeline = Endpoint(timeline)


class SenderIdRequests(_SenderIdRequestOps, SyncResource):
    """``/v1/sms/sender-id-requests``."""


class AsyncSenderIdRequests(_SenderIdRequestOps, AsyncResource):
    """``/v1/sms/sender-id-requests``."""


class SenderIds(_SenderIdOps, SyncResource):
    """``/v1/sms/sender-ids``."""


class AsyncSenderIds(_SenderIdOps, AsyncResource):
    """``/v1/sms/sender-ids``."""


class OptOuts(_OptOutOps, SyncResource):
    """``/v1/sms/opt-outs``."""


class AsyncOptOuts(_OptOutOps, AsyncResource):
    """``/v1/sms/opt-outs``."""


class Sms(_SmsOps, SyncResource):
    """``/v1/sms``: send, batch, list (``list_all`` iterates every page), get, timeline."""

    def __init__(self, transport: SyncTransport) -> None:
        super().__init__(transport)
        self.sender_id_requests = SenderIdRequests(transport)
        self.sender_ids = SenderIds(transport)
        self.opt_outs = OptOuts(transport)


class AsyncSms(_SmsOps, AsyncResource):
    """``/v1/sms``: send, batch, list (``list_all`` iterates every page), get, timeline."""

    def __init__(self, transport: AsyncTransport) -> None:
        super().__init__(transport)
        self.sender_id_requests = AsyncSenderIdRequests(transport)
        self.sender_ids = AsyncSenderIds(transport)
        self.opt_outs = AsyncOptOuts(transport)
