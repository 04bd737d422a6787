"""``POST /v1/sms/send``: validate, store the QUEUED message, publish ``SendSms`` with confirms.

Failure handling (docs/architecture.md): RabbitMQ known down → 503 before anything is written; the insert
fails → 503, nothing published; the publish is refused → the document is deleted again and 503 (if even
that delete fails, the outbox relay publishes it later, so it is never lost).
"""

from __future__ import annotations

import logging
from typing import Any

import pymongo
from litestar import Request, Response, post
from pymongo.errors import AutoReconnect, PyMongoError, ServerSelectionTimeoutError

from postwire_contracts import topology
from postwire_platform.broker import BrokerUnavailable, broker_connected
from postwire_platform.errors import unavailable
from postwire_platform.ids import new_id
from postwire_platform.mongo import MESSAGES, Document

from .auth import Principal
from .context import Gateway, gateway_of
from .decoding import decode_body
from .phones import normalise_phone
from .sms_documents import new_sms_document, send_command
from .sms_models import SendSmsRequest
from .views import accepted_view

log = logging.getLogger(__name__)

SCOPE = "send:sms"


@post("/v1/sms/send", status_code=201, summary="Send one SMS")
async def send_sms(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Queue one SMS; answers 201 with the stored message once RabbitMQ confirmed the command."""
    gateway = gateway_of(request)
    principal = await gateway.auth.authenticate(request, SCOPE)
    body = decode_body(await request.body(), SendSmsRequest)
    to = normalise_phone(body.to, field="to")
    await gateway.senders.require_approved(principal.tenant_id, body.sender_id)
    doc = await accept(gateway, principal, body, to)
    return Response({"success": True, "data": accepted_view(doc)}, status_code=201)


async def accept(gateway: Gateway, principal: Principal, body: SendSmsRequest, to: str) -> Document:
    """Store and publish one validated SMS; raises the 503 ``ApiError`` when it could not be both."""
    runtime = gateway.runtime
    publisher = runtime.publisher
    if publisher is None or not broker_connected(runtime.broker):
        raise unavailable("RabbitMQ")
    message_id = new_id()
    doc = new_sms_document(message_id, principal, body, to, gateway.clock())
    command = send_command(doc)
    messages = runtime.db[MESSAGES]
    try:
        await messages.insert_one(doc)
    except PyMongoError as exc:
        log.warning("storing message %s failed: %r", message_id, exc)
        maybe_written = (isinstance(exc, AutoReconnect)
                         and not isinstance(exc, ServerSelectionTimeoutError))
        if maybe_written:  # the write may have landed: take it back if we can
            await _delete(gateway, message_id, reason="insert outcome unknown")
        raise unavailable("MongoDB") from exc
    try:
        await publisher.publish(command, topology.SEND_SMS, message_id=message_id)
    except BrokerUnavailable as exc:
        log.warning("publishing message %s failed: %s", message_id, exc)
        await _delete(gateway, message_id, reason="publish refused")
        raise unavailable("RabbitMQ") from exc
    gateway.marker.add(message_id)
    return doc


async def _delete(gateway: Gateway, message_id: str, *, reason: str) -> None:
    """Best-effort compensation; a document left behind is published by the outbox relay."""
    try:
        with pymongo.timeout(2.0):
            await gateway.runtime.db[MESSAGES].delete_one({"_id": message_id, "published": False})
    except PyMongoError:
        log.error("could not delete message %s after %s; the outbox relay will publish it",
                  message_id, reason, exc_info=True)
