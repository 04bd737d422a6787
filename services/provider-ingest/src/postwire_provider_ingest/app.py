"""The provider-ingest app: carrier delivery receipts in, normalised ``StatusEvent``s out."""

from __future__ import annotations

import hmac
import logging
from typing import Any

import msgspec
from litestar import Litestar, Request, post
from litestar.params import FromQuery

from postwire_contracts import topology
from postwire_contracts.status import Channel
from postwire_platform.broker import BrokerUnavailable
from postwire_platform.clock import Clock, utcnow
from postwire_platform.errors import ApiError, unavailable
from postwire_platform.service import Runtime, build_app, new_broker

from .dlr import DlrBody, InvalidReceipt, normalise
from .settings import ProviderIngestSettings

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
    """Build the app with the SMS DLR endpoint."""
    runtime = Runtime(settings=settings, broker=new_broker(settings))
    now = clock or utcnow

    @post("/v1/webhooks/sms/dlr", status_code=200)
    async def sms_dlr(request: Request[Any, Any, Any], token: FromQuery[str | None] = None,
                      mid: FromQuery[str | None] = None) -> Ack:
        """A carrier's delivery receipt: verified, normalised, published; 200 once confirmed."""
        if not settings.sms_dlr_enabled:
            raise ApiError(404, "not_found", "this endpoint is disabled")
        if not token_ok(token, settings.sms_dlr_token):
            raise ApiError(401, "unauthorized", "missing or invalid callback token")
        raw = await request.body()
        body = decode_dlr(raw)
        try:
            event = normalise(body, raw.decode("utf-8", errors="replace"), mid=mid or None,
                              now=now())
        except InvalidReceipt as exc:
            raise ApiError(422, "invalid_receipt", str(exc)) from None
        if runtime.publisher is None:
            raise unavailable("message broker")
        try:
            await runtime.publisher.publish(event, topology.status_key(Channel.SMS),
                                            message_id=event.event_id)
        except BrokerUnavailable as exc:
            log.warning("receipt not published; carrier will retry", extra={
                "event_id": event.event_id, "error": repr(exc)})
            raise unavailable("message broker") from exc
        log.info("receipt published", extra={
            "event_id": event.event_id, "message_id": event.message_id or "",
            "status": event.status.value})
        return Ack()

    return build_app(runtime, route_handlers=[sms_dlr], collections=[])
