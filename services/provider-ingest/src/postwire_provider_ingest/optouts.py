"""Inbound SMS (STOP, START …) applied to the shared ``opt_outs`` collection, announced to webhooks.

An inbound message counts when it is exactly one keyword (``postwire_sms.keywords``, per sender). The
tenants it applies to are those that have sent SMS to that handset before (``messages`` by ``to``,
indexed): the ones that used the sender the message was addressed to, or else the one that sent to the
handset last (the conversation it most likely answers). A handset no tenant has written to records
nothing. STOP upserts the opt-out, START deletes it; either way an ``OptOutChanged`` goes out on
``notify.optout.sms`` with an id derived from the inbound event, so a redelivery repeats nothing new.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts import topology
from postwire_contracts.messages import InboundEvent, OptOutChanged
from postwire_contracts.status import Channel
from postwire_platform.clock import Clock, utcnow
from postwire_platform.mongo import MESSAGES, OPT_OUTS, Document
from postwire_sms.keywords import Keywords, normalise

log = logging.getLogger(__name__)

RECENT = 200
"""Messages to a handset looked at to find the tenants that wrote to it."""


class Sink(Protocol):
    async def publish(self, message: Any, routing_key: str, *,
                      message_id: str | None = None, headers: dict[str, Any] | None = None) -> None:
        ...


def e164(address: str) -> str:
    """A handset as stored in ``messages.to``: ``+`` and digits."""
    digits = "".join(c for c in address if c.isdigit())
    return f"+{digits}" if digits else address


def _same_sender(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    return a.lstrip("+").lower() == b.lstrip("+").lower()


class OptOuts:
    """Applies inbound keywords for every tenant concerned."""

    def __init__(self, db: AsyncDatabase[Document], sink: Sink, keywords: Keywords,
                 clock: Clock = utcnow) -> None:
        self._messages = db[MESSAGES]
        self._opt_outs = db[OPT_OUTS]
        self._sink = sink
        self._keywords = keywords
        self._clock = clock

    async def tenants_for(self, handset: str, sender: str | None) -> list[str]:
        """Tenants that have sent to ``handset``, narrowed to ``sender``'s users when any."""
        cursor = self._messages.find({"to": handset, "channel": "sms"},
                                     projection=["tenant_id", "sender_id"],
                                     sort=[("accepted_at", DESCENDING)], limit=RECENT)
        recent = [doc async for doc in cursor]
        by_sender = list(dict.fromkeys(
            d["tenant_id"] for d in recent if _same_sender(d.get("sender_id"), sender)))
        if by_sender:
            return by_sender
        return [recent[0]["tenant_id"]] if recent else []

    async def apply(self, event: InboundEvent, source: str) -> list[OptOutChanged]:
        """Record the opt-out or opt-in ``event`` asks for; returns what was announced."""
        intent = self._keywords.intent(event.body, event.recipient)
        if intent not in ("opt_out", "opt_in"):
            return []
        handset = e164(event.sender)
        tenants = ([event.tenant_id] if event.tenant_id
                   else await self.tenants_for(handset, event.recipient))
        if not tenants:
            log.info("keyword from a handset no tenant wrote to; nothing recorded",
                     extra={"event_id": event.event_id})
            return []
        now = self._clock()
        keyword = normalise(event.body)
        announced = []
        for tenant_id in tenants:
            key = {"tenant_id": tenant_id, "channel": "sms", "address": handset}
            if intent == "opt_out":
                await self._opt_outs.update_one(key, {"$setOnInsert": {
                    **key, "_id": f"oo_{tenant_id}_{handset}", "source": source,
                    "keyword": keyword, "created_at": now, "inbound_event_id": event.event_id}},
                    upsert=True)
            else:
                await self._opt_outs.delete_one(key)
            note = OptOutChanged(
                event_id=f"optout:{event.event_id}:{tenant_id}",
                event_type="sms_opt_out" if intent == "opt_out" else "sms_opt_in",
                tenant_id=tenant_id, channel=Channel.SMS, address=handset,
                opted_out=intent == "opt_out", keyword=keyword, source=source,
                occurred_at=event.received_at, sender=event.recipient,
                provider_message_id=event.provider_message_id)
            await self._sink.publish(note, topology.optout_key(Channel.SMS),
                                     message_id=note.event_id)
            announced.append(note)
        log.info("inbound keyword applied", extra={"event_id": event.event_id, "intent": intent,
                                                    "tenants": len(announced)})
        return announced
