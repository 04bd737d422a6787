"""The provider-ingest app: carrier callbacks in, normalised events out.

SMS: the token-guarded DLR endpoint, the HMAC-signed provider status endpoint, the token-guarded inbound
MO endpoint, and the ``provider-ingest.inbound`` consumer that applies STOP/START to ``opt_outs`` for
inbound SMS from both the HTTP endpoint and SMPP binds (published by sms-dispatcher).

WhatsApp: ``GET``/``POST /v1/webhooks/whatsapp`` and the ``provider-ingest.inbound.whatsapp`` consumer
(``wa_webhook``).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any

import msgspec
from faststream.exceptions import NackMessage
from litestar import Litestar, Request, post
from litestar.params import FromQuery
from pymongo.errors import ConnectionFailure

from postwire_contracts import topology
from postwire_contracts.messages import InboundEvent, StatusEvent
from postwire_contracts.status import Channel
from postwire_platform.broker import BrokerUnavailable, contract_body, work_queue
from postwire_platform.clock import Clock, utcnow
from postwire_platform.errors import ApiError, unavailable
from postwire_platform.mongo import CONVERSATIONS, MESSAGES, OPT_OUTS, SUPPRESSIONS, TENANTS
from postwire_platform.service import Runtime, build_app, new_broker
from postwire_sms.keywords import Keywords

from . import publishing
from .dlr import DlrBody, InvalidReceipt, normalise
from .email_routes import email_routes
from .inbound import decode_inbound
from .optouts import OptOuts
from .settings import ProviderIngestSettings
from .signature import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureInvalid,
    SignatureMissing,
    verify,
)
from .wa_webhook import whatsapp_routes, whatsapp_start

log = logging.getLogger(__name__)

_dlr_body = msgspec.json.Decoder(DlrBody)


class Ack(msgspec.Struct, frozen=True, kw_only=True):
    """What a carrier gets back once its receipt is safely published."""

    success: bool = True


def token_ok(given: str | None, expected: str) -> bool:
    """Constant-time token comparison; an empty configured token accepts nothing."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def decode_dlr(raw: bytes) -> DlrBody:
    """The receipt JSON, or a bare SMPP text-form receipt sent as the whole body."""
    try:
        return _dlr_body.decode(raw)
    except msgspec.ValidationError as exc:
        raise ApiError(422, "invalid_receipt", f"the receipt is malformed: {exc}") from None
    except msgspec.DecodeError:
        text = raw.decode("utf-8", errors="replace").strip()
        if "stat:" in text.lower():
            return DlrBody(receipt=text)
        raise ApiError(400, "invalid_json", "the request body is not valid JSON") from None


def create_app(settings: ProviderIngestSettings, *, clock: Clock | None = None) -> Litestar:
    """Build the app with the SMS DLR, provider status and inbound endpoints, the WhatsApp webhook and
    the inbound consumers."""
    runtime = Runtime(settings=settings, broker=new_broker(settings))
    publishing.install(runtime, group=settings.status_groups)
    now = clock or utcnow
    keywords = settings.sms_keywords or Keywords()

    async def publish(message: StatusEvent | InboundEvent, routing_key: str) -> None:
        statuses = publishing.sink(runtime)
        if statuses is None:
            raise unavailable("message broker")
        try:
            await statuses.publish(message, routing_key, message_id=message.event_id)
        except BrokerUnavailable as exc:
            log.warning("callback not published; the sender will retry", extra={
                "event_id": message.event_id, "error": repr(exc)})
            raise unavailable("message broker") from exc

    async def publish_receipt(raw: bytes, mid: str | None, source: str | None = None) -> Ack:
        body = decode_dlr(raw)
        try:
            event = normalise(body, raw.decode("utf-8", errors="replace"), mid=mid or None,
                              now=now())
        except InvalidReceipt as exc:
            raise ApiError(422, "invalid_receipt", str(exc)) from None
        if source is not None:
            event = msgspec.structs.replace(event, source=source)
        await publish(event, topology.status_key(Channel.SMS))
        log.info("receipt published", extra={
            "event_id": event.event_id, "message_id": event.message_id or "",
            "status": event.status.value})
        return Ack()

    @post("/v1/webhooks/sms/dlr", status_code=200)
    async def sms_dlr(request: Request[Any, Any, Any], token: FromQuery[str | None] = None,
                      mid: FromQuery[str | None] = None) -> Ack:
        """A carrier's delivery receipt: verified, normalised, published; 200 once confirmed."""
        if not settings.sms_dlr_enabled:
            raise ApiError(404, "not_found", "this endpoint is disabled")
        if not token_ok(token, settings.sms_dlr_token):
            raise ApiError(401, "unauthorized", "missing or invalid callback token")
        return await publish_receipt(await request.body(), mid)

    @post("/v1/webhooks/sms/provider", status_code=200)
    async def sms_provider(request: Request[Any, Any, Any],
                           mid: FromQuery[str | None] = None) -> Ack:
        """A provider's signed status update (HMAC-SHA256 over timestamp and body)."""
        if not settings.sms_provider_enabled:
            raise ApiError(404, "not_found", "this endpoint is disabled")
        raw = await request.body()
        try:
            verify([settings.sms_provider_secret, *settings.sms_provider_secrets],
                   request.headers.get(TIMESTAMP_HEADER),
                   request.headers.get(SIGNATURE_HEADER), raw, now(),
                   settings.sms_provider_tolerance)
        except SignatureMissing as exc:
            raise ApiError(401, "unauthorized", str(exc)) from None
        except SignatureInvalid as exc:
            raise ApiError(403, "forbidden", f"invalid signature: {exc}") from None
        return await publish_receipt(raw, mid, source="provider-status")

    @post("/v1/webhooks/sms/inbound-opt-out", status_code=200)
    async def sms_inbound(request: Request[Any, Any, Any],
                          token: FromQuery[str | None] = None) -> Ack:
        """An inbound SMS (STOP, START …) mapped to JSON: published; opt-outs follow from it."""
        if not settings.sms_inbound_enabled:
            raise ApiError(404, "not_found", "this endpoint is disabled")
        if not token_ok(token, settings.sms_inbound_token):
            raise ApiError(401, "unauthorized", "missing or invalid callback token")
        event = decode_inbound(await request.body(), now())
        await publish(event, topology.inbound_key(Channel.SMS))
        return Ack()

    inbound_queue = runtime.broker.subscriber(work_queue(topology.INGEST_INBOUND_QUEUE),
                                              decoder=contract_body(InboundEvent))

    @inbound_queue
    async def on_inbound(event: InboundEvent) -> None:
        optouts: OptOuts = runtime.extras["optouts"]
        if event.channel is not Channel.SMS:
            return
        try:
            await optouts.apply(event, event.source or "inbound")
        except (ConnectionFailure, BrokerUnavailable) as exc:
            log.warning("inbound not applied yet; handing it back",
                        extra={"event_id": event.event_id, "error": repr(exc)})
            await asyncio.sleep(1.0)
            raise NackMessage(requeue=True) from exc

    async def start(rt: Runtime) -> None:
        assert rt.publisher is not None
        rt.extras["optouts"] = OptOuts(rt.db, rt.publisher, keywords, now)
        await whatsapp_start(settings)(rt)

    async def stop(rt: Runtime) -> None:
        await inbound_queue.stop()

    return build_app(runtime, route_handlers=[sms_dlr, sms_provider, sms_inbound,
                                              *email_routes(runtime, settings, now),
                                              *whatsapp_routes(runtime, settings, now)],
                     collections=[MESSAGES, OPT_OUTS, SUPPRESSIONS, CONVERSATIONS, TENANTS],
                     on_start=[start], on_stop=[stop])
