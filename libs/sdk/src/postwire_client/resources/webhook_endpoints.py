"""Customer webhook endpoints (``webhooks:write``): CRUD, secret rotation, test events, delivery
attempts, replay."""

from __future__ import annotations

from collections.abc import Sequence
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
from .._unset import UNSET, Unset, changes
from ..models import (
    Page,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookEndpointWithSecret,
    WebhookReplay,
    WebhookTestResult,
)

BASE = "/v1/webhook-endpoints"
Outcome = Literal["delivered", "failed", "retrying"]


def _path(endpoint_id: str, *rest: str) -> str:
    return "/".join((BASE, segment(endpoint_id), *rest))


def create(*, url: str, events: Sequence[str] | None = None, description: str | None = None,
           enabled: bool | None = None) -> Call[WebhookEndpointWithSecret]:
    """Register an endpoint; ``events`` are event types (``sms_delivered``, …) or ``["*"]`` (the
    default). Its signing ``secret`` is in this answer only. Live keys need an https URL."""
    payload: dict[str, Any] = {"url": url}
    if events is not None:
        payload["events"] = list(events)
    if description is not None:
        payload["description"] = description
    if enabled is not None:
        payload["enabled"] = enabled
    return Call("POST", BASE, data_of(WebhookEndpointWithSecret), content=body(payload))


def list_endpoints(*, page: int | None = None, page_size: int | None = None
                   ) -> Call[Page[WebhookEndpoint]]:
    """The tenant's endpoints, newest first, without secrets."""
    return Call("GET", BASE, page_of(WebhookEndpoint), params=query(page=page, pageSize=page_size))


def get(endpoint_id: str) -> Call[WebhookEndpoint]:
    return Call("GET", _path(endpoint_id), data_of(WebhookEndpoint))


def update(endpoint_id: str, *, url: str | Unset = UNSET, events: Sequence[str] | Unset = UNSET,
           description: str | Unset = UNSET, enabled: bool | Unset = UNSET) -> Call[WebhookEndpoint]:
    """Change some of an endpoint's settings (``PATCH``); what is not passed stays. Enabling an
    endpoint disabled by a 410 clears its ``disabled_reason``."""
    payload = changes(url=url, events=UNSET if events is UNSET else list(events),
                      description=description, enabled=enabled)
    if not payload:
        raise ValueError("nothing to update")
    return Call("PATCH", _path(endpoint_id), data_of(WebhookEndpoint), content=body(payload))


def delete(endpoint_id: str) -> Call[None]:
    return Call("DELETE", _path(endpoint_id), nothing)


def rotate_secret(endpoint_id: str, *, overlap_seconds: int | None = None
                  ) -> Call[WebhookEndpointWithSecret]:
    """A new signing secret (in this answer only). For ``overlap_seconds`` (default: the server's,
    at most 7 days) deliveries carry a signature with the old secret and one with the new;
    :class:`~postwire_client.webhooks.Webhook` accepts either."""
    payload: dict[str, Any] = {}
    if overlap_seconds is not None:
        payload["overlapSeconds"] = overlap_seconds
    return Call("POST", _path(endpoint_id, "rotate-secret"), data_of(WebhookEndpointWithSecret),
                content=body(payload))


def send_test(endpoint_id: str, *, event_type: str | None = None) -> Call[WebhookTestResult]:
    """Send a signed example event (``"test": true``) once (202); default type: the first the endpoint
    subscribes to. ``ConflictError`` for a disabled endpoint."""
    payload: dict[str, Any] = {}
    if event_type is not None:
        payload["eventType"] = event_type
    return Call("POST", _path(endpoint_id, "test"), data_of(WebhookTestResult), content=body(payload))


def list_attempts(endpoint_id: str, *, outcome: Outcome | None = None, message_id: str | None = None,
                  webhook_id: str | None = None, page: int | None = None,
                  page_size: int | None = None) -> Call[Page[WebhookAttempt]]:
    """The endpoint's delivery attempts, newest first (status code, latency, error, outcome)."""
    return Call("GET", _path(endpoint_id, "attempts"), page_of(WebhookAttempt),
                params=query(outcome=outcome, messageId=message_id, webhookId=webhook_id, page=page,
                             pageSize=page_size))


def list_message_attempts(*, message_id: str, outcome: Outcome | None = None,
                          webhook_id: str | None = None, page: int | None = None,
                          page_size: int | None = None) -> Call[Page[WebhookAttempt]]:
    """Every attempt to deliver one message's events, to any of the tenant's endpoints, newest first
    (``GET /v1/webhook-attempts``)."""
    return Call("GET", "/v1/webhook-attempts", page_of(WebhookAttempt),
                params=query(messageId=message_id, outcome=outcome, webhookId=webhook_id, page=page,
                             pageSize=page_size))


def replay(endpoint_id: str, *, webhook_id: str | None = None, since: datetime | str | None = None
           ) -> Call[WebhookReplay]:
    """Deliver again (202): one delivery (``webhook_id``, from its ``webhook-id`` header or the
    attempts; same id and body, so the receiver can deduplicate), or every delivery to the endpoint
    that failed ``since`` a time."""
    if (webhook_id is None) == (since is None):
        raise ValueError("pass exactly one of webhook_id and since")
    payload: dict[str, Any] = {}
    if webhook_id is not None:
        payload["webhookId"] = webhook_id
    if since is not None:
        payload["since"] = query(since=since)["since"]
    return Call("POST", _path(endpoint_id, "replay"), data_of(WebhookReplay), content=body(payload))


class _WebhookEndpointOps:
    create = Endpoint(create)
    list = Endpoint(list_endpoints)
    list_all = Paginated(list_endpoints)
    get = Endpoint(get)
    update = Endpoint(update)
    delete = Endpoint(delete)
    rotate_secret = Endpoint(rotate_secret)
    test = Endpoint(send_test)
    attempts = Endpoint(list_attempts)
    message_attempts = Endpoint(list_message_attempts)
    replay = Endpoint(replay)


class WebhookEndpoints(_WebhookEndpointOps, SyncResource):
    """``/v1/webhook-endpoints`` (and ``/v1/webhook-attempts`` as ``message_attempts``)."""


class AsyncWebhookEndpoints(_WebhookEndpointOps, AsyncResource):
    """``/v1/webhook-endpoints`` (and ``/v1/webhook-attempts`` as ``message_attempts``)."""
