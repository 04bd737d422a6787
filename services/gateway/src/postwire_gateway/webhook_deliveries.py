"""Webhook deliveries (scope ``webhooks:write``): attempts per endpoint and per message, replays, test
events.

Attempts are webhook-fanout's records in ``webhook_attempts`` (kept ``WEBHOOK_ATTEMPT_RETENTION_DAYS``).
Replays and test events are commands to webhook-fanout (``webhook.command``): the gateway checks what it
can (the endpoint is the tenant's and enabled, the delivery exists), publishes with a confirm and answers
202; webhook-fanout does the delivering. A replay keeps the delivery's ``webhook-id`` and exact body.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath

from postwire_contracts import topology
from postwire_contracts.webhooks import (
    EVENT_TYPES,
    ReplayDelivery,
    ReplayFailed,
    SendTestEvent,
    WebhookCommand,
    webhook_id,
)
from postwire_platform.broker import BrokerUnavailable
from postwire_platform.errors import ApiError, unavailable
from postwire_platform.ids import new_id
from postwire_platform.mongo import WEBHOOK_ATTEMPTS, Document

from .availability import mongo_guard
from .context import Gateway, gateway_of
from .decoding import choice_param, decode_body
from .paging import paged
from .views import iso
from .webhook_endpoints import SCOPE, TAGS, find_endpoint

OUTCOMES = ("delivered", "failed", "retrying")
_NO_BODY = {"body": False}


class ReplayBody(msgspec.Struct, rename="camel", kw_only=True, frozen=True):
    """``POST /v1/webhook-endpoints/{id}/replay``: one delivery, or every failed one since a time."""

    webhook_id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    since: datetime | None = None


class TestEventBody(msgspec.Struct, rename="camel", kw_only=True, frozen=True):
    """``POST /v1/webhook-endpoints/{id}/test``."""

    event_type: str | None = None


def attempt_view(doc: Document) -> dict[str, Any]:
    """One attempt as the API shows it."""
    return {
        "id": doc["_id"],
        "endpointId": doc["endpoint_id"],
        "webhookId": doc["webhook_id"],
        "eventId": doc.get("event_id"),
        "eventType": doc.get("event_type"),
        "messageId": doc.get("message_id"),
        "attempt": doc.get("attempt"),
        "trigger": doc.get("trigger") or "event",
        "at": iso(doc.get("at")),
        "statusCode": doc.get("status_code"),
        "latencyMs": doc.get("latency_ms"),
        "error": doc.get("error"),
        "outcome": doc.get("outcome"),
    }


@get("/v1/webhook-endpoints/{endpoint_id:str}/attempts", summary="Delivery attempts of an endpoint",
     tags=TAGS, opt={"page": True, "query": {"outcome": {"type": "string", "enum": list(OUTCOMES)},
                                           "messageId": {"type": "string"},
                                           "webhookId": {"type": "string"}}})
async def list_endpoint_attempts(request: Request[Any, Any, Any],
                                 endpoint_id: FromPath[str]) -> dict[str, Any]:
    """The endpoint's attempts, newest first; ``outcome``, ``messageId`` and ``webhookId`` filter."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, SCOPE)
    await find_endpoint(gateway, principal.tenant_id, endpoint_id)
    criteria = {"tenant_id": principal.tenant_id, "endpoint_id": endpoint_id,
                **_filters(request)}
    return await paged(gateway.runtime.db[WEBHOOK_ATTEMPTS], criteria, request.query_params,
                       attempt_view, sort=[("at", -1), ("_id", -1)], projection=_NO_BODY)


@get("/v1/webhook-attempts", summary="Delivery attempts of a message", tags=TAGS,
     opt={"page": True, "query": {"messageId": {"type": "string", "minLength": 1},
                                  "outcome": {"type": "string", "enum": list(OUTCOMES)},
                                  "webhookId": {"type": "string"}}})
async def list_message_attempts(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Every attempt to deliver a message's events to any of the tenant's endpoints, newest first
    (``messageId`` required; ``outcome`` and ``webhookId`` filter)."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, SCOPE)
    if not request.query_params.get("messageId"):
        raise ApiError(422, "validation_error", "the messageId query parameter is required",
                       field="messageId")
    criteria = {"tenant_id": principal.tenant_id, **_filters(request)}
    return await paged(gateway.runtime.db[WEBHOOK_ATTEMPTS], criteria, request.query_params,
                       attempt_view, sort=[("at", -1), ("_id", -1)], projection=_NO_BODY)


@post("/v1/webhook-endpoints/{endpoint_id:str}/replay", status_code=202,
      summary="Replay webhook deliveries", tags=TAGS, opt={"body": ReplayBody})
async def replay_deliveries(request: Request[Any, Any, Any],
                            endpoint_id: FromPath[str]) -> Response[dict[str, Any]]:
    """``{"webhookId": …}`` delivers that delivery again (same ``webhook-id``, same body);
    ``{"since": …}`` delivers again every delivery to this endpoint that ended failed since then."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, SCOPE)
    await _enabled_endpoint(gateway, principal.tenant_id, endpoint_id)  # another tenant's: 404 first
    body = decode_body(await request.body(), ReplayBody)
    if (body.webhook_id is None) == (body.since is None):
        raise ApiError(422, "validation_error", "give either webhookId or since", field="webhookId")
    command: WebhookCommand
    now = gateway.clock()
    command_id = new_id("whc_")
    if body.webhook_id is not None:
        async with mongo_guard("finding a webhook delivery"):
            known = await gateway.runtime.db[WEBHOOK_ATTEMPTS].find_one(
                {"webhook_id": body.webhook_id, "endpoint_id": endpoint_id,
                 "tenant_id": principal.tenant_id}, projection=["_id"])
        if known is None:
            raise ApiError(404, "not_found", f"no delivery {body.webhook_id!r} to this endpoint")
        command = ReplayDelivery(command_id=command_id, tenant_id=principal.tenant_id,
                                 endpoint_id=endpoint_id, webhook_id=body.webhook_id,
                                 requested_at=now)
        data: dict[str, Any] = {"commandId": command_id, "webhookId": body.webhook_id}
    else:
        assert body.since is not None
        since = body.since if body.since.tzinfo else body.since.replace(tzinfo=UTC)
        command = ReplayFailed(command_id=command_id, tenant_id=principal.tenant_id,
                               endpoint_id=endpoint_id, since=since, requested_at=now)
        data = {"commandId": command_id, "since": iso(since)}
    await _send(gateway, command)
    return Response({"success": True, "data": data}, status_code=202)


@post("/v1/webhook-endpoints/{endpoint_id:str}/test", status_code=202,
      summary="Send a test event to a webhook endpoint", tags=TAGS, opt={"body": TestEventBody})
async def send_test_event(request: Request[Any, Any, Any],
                          endpoint_id: FromPath[str]) -> Response[dict[str, Any]]:
    """An example event (``eventType``, default the first the endpoint subscribes to) marked
    ``"test": true``, delivered once, signed like any other; its attempt shows in the attempts."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, SCOPE)
    raw = await request.body()
    body = decode_body(raw, TestEventBody) if raw.strip() else TestEventBody()
    endpoint = await _enabled_endpoint(gateway, principal.tenant_id, endpoint_id)
    subscribed = [e for e in endpoint.get("events") or ["*"] if e != "*"]
    event_type = body.event_type or (subscribed[0] if subscribed else "sms_delivered")
    if event_type not in EVENT_TYPES:
        raise ApiError(422, "validation_error", f"unknown event type {event_type!r}",
                       field="eventType")
    event_id = new_id("evt_test_")
    command = SendTestEvent(command_id=new_id("whc_"), tenant_id=principal.tenant_id,
                            endpoint_id=endpoint_id, event_id=event_id, event_type=event_type,
                            requested_at=gateway.clock())
    await _send(gateway, command)
    return Response({"success": True, "data": {
        "commandId": command.command_id, "eventId": event_id, "eventType": event_type,
        "webhookId": webhook_id(event_id, endpoint_id)}}, status_code=202)


def _filters(request: Request[Any, Any, Any]) -> Document:
    criteria: Document = {}
    outcome = choice_param(request.query_params, "outcome", OUTCOMES)
    if outcome is not None:
        criteria["outcome"] = outcome
    for param, field in (("messageId", "message_id"), ("webhookId", "webhook_id")):
        value = request.query_params.get(param)
        if value:
            criteria[field] = str(value)
    return criteria


async def _enabled_endpoint(gateway: Gateway, tenant_id: str, endpoint_id: str) -> Document:
    endpoint = await find_endpoint(gateway, tenant_id, endpoint_id)
    if not endpoint.get("enabled", True):
        raise ApiError(409, "endpoint_disabled",
                       "the endpoint is disabled; enable it (PATCH enabled: true) first")
    return endpoint


async def _send(gateway: Gateway, command: WebhookCommand) -> None:
    publisher = gateway.runtime.publisher
    if publisher is None:
        raise unavailable("RabbitMQ")
    try:
        await publisher.publish(command, topology.FANOUT_COMMAND_KEY, message_id=command.command_id)
    except BrokerUnavailable as exc:
        raise unavailable("RabbitMQ") from exc


WEBHOOK_DELIVERY_ROUTES = [list_endpoint_attempts, list_message_attempts, replay_deliveries,
                           send_test_event]
