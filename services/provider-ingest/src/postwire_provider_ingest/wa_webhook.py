"""``GET``/``POST /v1/webhooks/whatsapp`` (Meta's verification handshake and signed notifications) and
the consumer that keeps inbound messages on their conversations.

POST: the ``X-Hub-Signature-256`` HMAC is checked over the raw bytes with ``WHATSAPP_APP_SECRET`` before
anything is parsed; a missing or wrong one is 401 and nothing is published. Then each change is routed
to a tenant, its statuses and messages are published (confirmed) as events and Meta gets 200. A status
of a message we do not know, or a notification for a number no tenant owns, is still published:
reporting keeps it in its ledger (parked until the message is known). Only a broker that does not
confirm makes the answer 503, so Meta delivers the notification again (events are deduplicated).

Inbound events come back to this service on ``provider-ingest.inbound.whatsapp``: kept on the
conversation, STOP/START applied, then ``InboundReceived`` goes to webhook-fanout (``whatsapp_inbound``).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import msgspec
from faststream.exceptions import NackMessage
from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from prometheus_client import Counter
from pymongo.errors import ConnectionFailure, PyMongoError

from postwire_contracts import topology
from postwire_contracts.messages import InboundEvent, StatusEvent
from postwire_contracts.status import Channel
from postwire_platform.broker import BrokerUnavailable, contract_body, work_queue
from postwire_platform.errors import ApiError, unavailable
from postwire_platform.service import Runtime
from postwire_whatsapp import webhooks

from . import publishing
from .settings import ProviderIngestSettings
from .wa_conversations import Conversations
from .wa_events import inbound_event, raw_envelope_decoder, status_event
from .wa_routing import LineRouter

log = logging.getLogger(__name__)

PATH = "/v1/webhooks/whatsapp"
ROUTER = "wa_router"
CONVERSATIONS = "wa_conversations"
NACK_PAUSE = 1.0

NOTIFICATIONS = Counter("postwire_whatsapp_webhooks_total", "WhatsApp notifications by outcome",
                        ["outcome"])
EVENTS = Counter("postwire_whatsapp_webhook_events_total", "Events from WhatsApp notifications",
                 ["kind", "route"])


class Ack(msgspec.Struct, frozen=True, kw_only=True):
    success: bool = True


Event = StatusEvent | InboundEvent


def whatsapp_routes(runtime: Runtime, settings: ProviderIngestSettings,
                    now: Callable[[], datetime]) -> list[HTTPRouteHandler]:
    """The two webhook routes; also subscribes the inbound consumer on ``runtime.broker``."""

    @get(PATH, media_type="text/plain", include_in_schema=False)
    async def verify(request: Request[Any, Any, Any]) -> Response[str]:
        """Meta's subscription handshake: echo ``hub.challenge`` when the verify token matches."""
        _require_enabled(settings)
        params = request.query_params
        mode, token = params.get("hub.mode"), params.get("hub.verify_token")
        challenge = params.get("hub.challenge") or ""
        if mode != "subscribe" or not _same(token, settings.whatsapp_verify_token):
            raise ApiError(403, "forbidden", "hub.mode or hub.verify_token is wrong")
        return Response(challenge, media_type="text/plain", status_code=200)

    @post(PATH, status_code=200, include_in_schema=False)
    async def notify(request: Request[Any, Any, Any]) -> Ack:
        """A signed notification: statuses and inbound messages become published events."""
        _require_enabled(settings)
        raw = await request.body()
        header = request.headers.get(webhooks.SIGNATURE_HEADER)
        if not webhooks.signature_ok(settings.whatsapp_app_secret, raw, header):
            NOTIFICATIONS.labels("bad_signature").inc()
            log.warning("WhatsApp notification with a missing or wrong signature refused",
                        extra={"signature_present": bool(header)})
            raise ApiError(401, "invalid_signature", "missing or invalid X-Hub-Signature-256")
        events = await _events(runtime, raw, now())
        await _publish(runtime, events)
        NOTIFICATIONS.labels("accepted").inc()
        return Ack()

    @runtime.broker.subscriber(work_queue(topology.WHATSAPP_INBOUND_QUEUE),
                               decoder=contract_body(InboundEvent))
    async def keep_inbound(event: InboundEvent) -> None:
        conversations: Conversations = runtime.extras[CONVERSATIONS]
        try:
            note = await conversations.keep(event)
            if note is not None and runtime.publisher is not None:
                await runtime.publisher.publish(note, topology.notify_inbound_key(Channel.WHATSAPP),
                                                message_id=note.event_id)
        except (ConnectionFailure, BrokerUnavailable) as exc:
            log.warning("inbound message not kept yet; handing it back",
                        extra={"event_id": event.event_id, "error": repr(exc)})
            await asyncio.sleep(NACK_PAUSE)
            raise NackMessage(requeue=True) from exc

    return [verify, notify]


def whatsapp_start(settings: ProviderIngestSettings) -> Callable[[Runtime], Awaitable[None]]:
    """The start hook that builds the router and the conversation writer."""

    async def start(rt: Runtime) -> None:
        rt.extras[ROUTER] = LineRouter(rt.db, settings.whatsapp_line_map,
                                       settings.whatsapp_default_tenant_id,
                                       ttl=settings.whatsapp_line_cache_seconds)
        rt.extras[CONVERSATIONS] = Conversations(
            rt.db, opt_out=settings.whatsapp_opt_out_keywords,
            opt_in=settings.whatsapp_opt_in_keywords,
            max_entries=settings.whatsapp_conversation_max_entries)
        if settings.whatsapp_webhook_enabled and not settings.whatsapp_app_secret:
            log.warning("WHATSAPP_APP_SECRET is empty: every WhatsApp notification will be refused")

    return start


def _require_enabled(settings: ProviderIngestSettings) -> None:
    if not settings.whatsapp_webhook_enabled:
        raise ApiError(404, "not_found", "this endpoint is disabled")


def _same(given: str | None, expected: str) -> bool:
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


async def _events(runtime: Runtime, raw: bytes, now: datetime) -> list[tuple[Event, str]]:
    """Every event of a notification with its routing key; 400 when the body is not a notification."""
    try:
        envelope = webhooks.envelope_decoder.decode(raw)
        raws = raw_envelope_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        NOTIFICATIONS.labels("malformed").inc()
        raise ApiError(400, "invalid_json", f"not a WhatsApp notification: {exc}") from None
    router: LineRouter = runtime.extras[ROUTER]
    out: list[tuple[Event, str]] = []
    for entry, raw_entry in zip(envelope.entry, raws.entry, strict=True):
        for change, raw_change in zip(entry.changes, raw_entry.changes, strict=True):
            value = change.value
            if change.field != "messages":
                log.info("WhatsApp notification field not handled", extra={"field": change.field})
                continue
            for error in value.errors:
                log.warning("WhatsApp system error notified", extra={
                    "code": error.code, "reason": error.reason,
                    "phone_number_id": value.metadata.phone_number_id})
            if not value.statuses and not value.messages:
                continue
            phone = value.metadata.phone_number_id
            try:
                tenant, route = await router.tenant_for(phone)
            except PyMongoError as exc:
                raise unavailable("MongoDB") from exc
            if route == "unrouted":
                log.warning("WhatsApp notification for a number no tenant owns",
                            extra={"phone_number_id": phone})
            # A status names its tenant only on a number that belongs to one tenant: the platform's
            # default line is shared, and the message (found by its id) says whose it is.
            owner = tenant if route in ("tenant_line", "line_map") else None
            for update, update_raw in zip(value.statuses, raw_change.value.statuses, strict=True):
                status = status_event(update, value.metadata, owner, bytes(update_raw), now)
                if status is None:
                    log.info("WhatsApp status not tracked", extra={"status": update.status})
                    continue
                EVENTS.labels("status", route).inc()
                out.append((status, topology.status_key(Channel.WHATSAPP)))
            names = {c.wa_id: (c.profile.name if c.profile else None) for c in value.contacts}
            for message, message_raw in zip(value.messages, raw_change.value.messages, strict=True):
                owner, how = tenant, str(route)
                if route in ("default", "unrouted") and message.context and message.context.id:
                    try:
                        replied_to = await router.sender_of(message.context.id)
                    except PyMongoError as exc:
                        raise unavailable("MongoDB") from exc
                    if replied_to is not None:
                        owner, how = replied_to, "reply"
                inbound = inbound_event(message, names.get(message.sender), value.metadata, owner,
                                        bytes(message_raw), now)
                EVENTS.labels("inbound", how).inc()
                out.append((inbound, topology.inbound_key(Channel.WHATSAPP)))
    return out


async def _publish(runtime: Runtime, events: list[tuple[Event, str]]) -> None:
    publisher = publishing.sink(runtime)
    if publisher is None:
        raise unavailable("message broker")
    results = await asyncio.gather(
        *(publisher.publish(event, key, message_id=event.event_id) for event, key in events),
        return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        NOTIFICATIONS.labels("unpublished").inc()
        log.warning("WhatsApp notification not fully published; Meta will retry it",
                    extra={"error": repr(failed[0]), "events": len(events)})
        raise unavailable("message broker") from failed[0]
