"""provider-ingest's email endpoints: signed MTA feedback, the open pixel and the click redirect.

- ``POST /v1/webhooks/email/feedback[?mid=…]``: ``X-Postwire-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
  "<t>." + body>`` with ``EMAIL_FEEDBACK_SECRET``; JSON or an RFC 3464 DSN / RFC 5965 report as the raw
  MIME body. Hard bounces of bad addresses (5.1.x) and complaints add a suppression for the message's
  tenant; every item becomes a status event (a callback for an unknown message is still published:
  reporting parks it).
- ``GET /v1/track/open/<token>.gif``: the first fetch records ``email_opened`` (status READ).
- ``GET /v1/track/click/<token>``: records ``email_clicked`` once per link and redirects (302) to the
  URL inside the signed token, never to one from the query string: no open redirect.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from typing import Any

from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, FromQuery
from pymongo.errors import PyMongoError

from postwire_contracts import topology
from postwire_contracts.email_events import EMAIL_CLICKED, EMAIL_OPENED
from postwire_contracts.messages import StatusEvent
from postwire_contracts.status import Channel, Status
from postwire_platform import signed_tokens
from postwire_platform.broker import BrokerUnavailable
from postwire_platform.clock import Clock
from postwire_platform.errors import ApiError, unavailable
from postwire_platform.ids import new_id
from postwire_platform.mongo import MESSAGES, SUPPRESSIONS
from postwire_platform.service import Runtime

from . import publishing
from .email_feedback import Feedback, InvalidFeedback, from_json, from_report
from .settings import ProviderIngestSettings

log = logging.getLogger(__name__)

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_CACHE = {"Cache-Control": "no-store, no-cache, must-revalidate, private"}
TRACKING_SOURCE = "email-tracking"


def email_routes(runtime: Runtime, settings: ProviderIngestSettings, now: Clock) -> list[HTTPRouteHandler]:
    """The email endpoints, bound to ``runtime``'s publisher and database."""

    async def publish(event: StatusEvent) -> None:
        statuses = publishing.sink(runtime)
        if statuses is None:
            raise unavailable("message broker")
        try:
            await statuses.publish(event, topology.status_key(Channel.EMAIL),
                                   message_id=event.event_id)
        except BrokerUnavailable as exc:
            log.warning("email event not published", extra={"event_id": event.event_id,
                                                            "error": repr(exc)})
            raise unavailable("message broker") from exc

    async def suppress(item: Feedback) -> None:
        reason = item.suppresses
        if reason is None or not item.message_id:
            return
        try:
            message = await runtime.db[MESSAGES].find_one({"_id": item.message_id},
                                                         projection=["tenant_id", "to"])
            if message is None:
                return  # unknown message: no tenant to suppress for; the event is still published
            address = item.recipient or (message["to"] if isinstance(message.get("to"), str) else None)
            if not address:
                return
            await runtime.db[SUPPRESSIONS].update_one(
                {"tenant_id": message["tenant_id"], "email": address.lower()},
                {"$setOnInsert": {"_id": new_id("sup_"), "reason": reason, "source": "provider-ingest",
                                  "message_id": item.message_id,
                                  "detail": {"status": item.status, "diagnostic": item.diagnostic},
                                  "created_at": now()}},
                upsert=True)
        except PyMongoError as exc:
            raise unavailable("MongoDB") from exc

    @post("/v1/webhooks/email/feedback", status_code=200)
    async def email_feedback(request: Request[Any, Any, Any],
                             mid: FromQuery[str | None] = None) -> dict[str, Any]:
        """MTA bounce, delivery and complaint feedback: verified, normalised, suppressed, published."""
        if not settings.email_feedback_enabled:
            raise ApiError(404, "not_found", "this endpoint is disabled")
        raw = await request.body()
        try:
            signed_tokens.verify_body(settings.email_feedback_secret, raw,
                                      request.headers.get(signed_tokens.SIGNATURE_HEADER),
                                      now=time.time())
        except signed_tokens.BadToken as exc:
            raise ApiError(401, "unauthorized", f"feedback signature: {exc}") from None
        content_type = request.headers.get("content-type", "").lower()
        try:
            if "json" in content_type or raw.lstrip()[:1] == b"{":
                items = from_json(raw, mid=mid, now=now())
            else:
                items = from_report(raw, mid=mid, now=now())
        except InvalidFeedback as exc:
            raise ApiError(422, "invalid_feedback", str(exc)) from None
        for item in items:
            await suppress(item)
            await publish(item.event())
        log.info("email feedback published", extra={"count": len(items),
                                                    "kinds": [i.kind for i in items]})
        return {"success": True, "events": len(items)}

    def verified(token: str, kind: str) -> dict[str, Any]:
        try:
            payload = signed_tokens.verify(settings.email_tracking_secret, token)
        except signed_tokens.BadToken:
            raise ApiError(403, "forbidden", "invalid tracking token") from None
        if payload.get("k") != kind or not isinstance(payload.get("m"), str):
            raise ApiError(403, "forbidden", "invalid tracking token")
        return payload

    def tracking_event(payload: dict[str, Any], request: Request[Any, Any, Any], event_id: str,
                       event_type: str, extra: dict[str, Any]) -> StatusEvent:
        return StatusEvent(
            event_id=event_id, channel=Channel.EMAIL, status=Status.READ, occurred_at=now(),
            source=TRACKING_SOURCE, message_id=payload["m"], event_type=event_type,
            detail={"user_agent": request.headers.get("user-agent", "")[:300], **extra})

    @get("/v1/track/open/{token:str}", include_in_schema=False)
    async def email_open(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[bytes]:
        """The open pixel: the first fetch of a message's pixel is its ``email_opened``."""
        if not settings.email_tracking_enabled:
            raise ApiError(404, "not_found", "this endpoint is disabled")
        payload = verified(token.removesuffix(".gif"), "o")
        await publish(tracking_event(payload, request, f"{payload['m']}:opened", EMAIL_OPENED, {}))
        return Response(PIXEL, media_type="image/gif", headers=NO_CACHE)

    @get("/v1/track/click/{token:str}", include_in_schema=False)
    async def email_click(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[bytes]:
        """The click redirect to the signed URL; the first click of each link is recorded."""
        if not settings.email_tracking_enabled:
            raise ApiError(404, "not_found", "this endpoint is disabled")
        payload = verified(token, "c")
        url = payload.get("u")
        if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
            raise ApiError(403, "forbidden", "invalid tracking token")
        link = hashlib.sha256(url.encode()).hexdigest()[:16]
        event = tracking_event(payload, request, f"{payload['m']}:click:{link}", EMAIL_CLICKED,
                               {"url": url})
        try:
            await publish(event)
        except ApiError:
            # a reader's click must work even when RabbitMQ is down: the redirect wins, the event
            # is lost (and counted in the log)
            log.error("click not recorded", extra={"event_id": event.event_id})
        return Response(b"", status_code=302, headers={"Location": url, **NO_CACHE})

    return [email_feedback, email_open, email_click]

