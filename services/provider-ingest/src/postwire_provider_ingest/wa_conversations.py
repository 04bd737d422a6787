"""Inbound WhatsApp messages kept on the tenant's conversation with the contact; STOP/START applied.

provider-ingest is the single writer of ``conversations``:
``{_id: "<tenant id>:<wa_id>", tenant_id, wa_id, contact_name, phone_number_id, created_at, updated_at,
last_inbound_at, opted_out, opt_changed_at, opt_keyword, entries: [{wamid, type, body, occurred_at,
recorded_at, phone_number_id, contact_name, keyword}]}`` (the newest ``max_entries`` entries).

An opt-out keyword records ``opt_outs {tenant_id, channel: "whatsapp", address: wa_id}``; an opt-in
keyword removes it. The conversation remembers the time of the last keyword applied, so an older STOP
that arrives after a newer START changes nothing. Every write is idempotent: a redelivered event
pushes no second entry and re-applies the same opt state.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from postwire_contracts.messages import InboundEvent, InboundReceived
from postwire_contracts.status import Channel
from postwire_platform.clock import utcnow
from postwire_platform.ids import new_id
from postwire_platform.mongo import CONVERSATIONS, OPT_OUTS, Document
from postwire_whatsapp import keywords

log = logging.getLogger(__name__)

INBOUND_EVENT_TYPE = "whatsapp_inbound"


def conversation_id(tenant_id: str, wa_id: str) -> str:
    return f"{tenant_id}:{wa_id}"


class Conversations:
    """Applies inbound events to ``conversations`` and ``opt_outs``."""

    def __init__(self, db: AsyncDatabase[Document], *, opt_out: Iterable[str], opt_in: Iterable[str],
                 max_entries: int = 1000) -> None:
        self._conversations = db[CONVERSATIONS]
        self._opt_outs = db[OPT_OUTS]
        self._opt_out = frozenset(k.upper() for k in opt_out)
        self._opt_in = frozenset(k.upper() for k in opt_in)
        self._max = max_entries

    async def keep(self, event: InboundEvent) -> InboundReceived | None:
        """Record ``event``; the notification to deliver, or None when no tenant owns the line."""
        if event.tenant_id is None:
            log.warning("inbound WhatsApp message on an unrouted number: kept in the events ledger only",
                        extra={"event_id": event.event_id, "phone_number_id": event.recipient})
            return None
        tenant, wa = event.tenant_id, event.sender
        found = keywords.classify(event.body, opt_out=self._opt_out, opt_in=self._opt_in)
        keyword = found[1] if found else None
        contact = event.detail.get("contact_name")
        await self._push(event, tenant, wa, keyword, contact)
        change = None
        if found is not None:
            change = await self._apply_keyword(tenant, wa, found[0] == "opt_out", found[1],
                                               event.received_at)
        return InboundReceived(
            event_id=event.event_id, event_type=INBOUND_EVENT_TYPE, tenant_id=tenant,
            channel=Channel.WHATSAPP, sender=wa, recipient=event.recipient, body=event.body,
            occurred_at=event.received_at,
            message_type=str(event.detail.get("message_type") or "text"),
            contact_name=str(contact) if contact else None,
            provider_message_id=event.provider_message_id, opt_change=change,
            detail={k: v for k, v in event.detail.items() if k == "display_phone_number"},
        )

    async def _push(self, event: InboundEvent, tenant: str, wa: str, keyword: str | None,
                    contact: object) -> None:
        now = utcnow()
        entry: Document = {
            "wamid": event.provider_message_id, "type": event.detail.get("message_type", "text"),
            "body": event.body, "occurred_at": event.received_at, "recorded_at": now,
            "phone_number_id": event.recipient, "contact_name": contact, "keyword": keyword,
        }
        fields: Document = {"tenant_id": tenant, "wa_id": wa, "phone_number_id": event.recipient,
                            "updated_at": now}
        if contact:
            fields["contact_name"] = contact
        try:
            await self._conversations.update_one(
                {"_id": conversation_id(tenant, wa),
                 "entries.wamid": {"$ne": event.provider_message_id}},
                {"$push": {"entries": {"$each": [entry], "$slice": -self._max}},
                 "$set": fields,
                 "$max": {"last_inbound_at": event.received_at},
                 "$setOnInsert": {"created_at": now}},
                upsert=True)
        except DuplicateKeyError:
            log.info("inbound message already on its conversation", extra={"event_id": event.event_id})

    async def _apply_keyword(self, tenant: str, wa: str, opting_out: bool, keyword: str,
                             at: datetime) -> str | None:
        """Apply an opt-out or opt-in unless a later keyword was applied already.

        "Not later than ``at``" matches a conversation with no keyword yet too; written as one
        field's ``$not`` rather than a top-level ``$or``, which SecantusDB answers by scanning the
        collection instead of using ``_id`` (docs/performance.md, change 22)."""
        result = await self._conversations.update_one(
            {"_id": conversation_id(tenant, wa), "opt_changed_at": {"$not": {"$gt": at}}},
            {"$set": {"opted_out": opting_out, "opt_changed_at": at, "opt_keyword": keyword}})
        if result.matched_count == 0:
            log.info("older keyword ignored", extra={"tenant_id": tenant, "keyword": keyword})
            return None
        criteria = {"tenant_id": tenant, "channel": Channel.WHATSAPP.value, "address": wa}
        if opting_out:
            # a DuplicateKeyError means a concurrent delivery of the same STOP inserted it
            with contextlib.suppress(DuplicateKeyError):
                await self._opt_outs.update_one(
                    criteria,
                    {"$setOnInsert": {"_id": new_id("oo_"), "source": "whatsapp", "keyword": keyword,
                                      "created_at": utcnow()}},
                    upsert=True)
            log.info("opted out", extra={"tenant_id": tenant, "keyword": keyword})
            return "opted_out"
        await self._opt_outs.delete_one(criteria)
        log.info("opted back in", extra={"tenant_id": tenant, "keyword": keyword})
        return "opted_in"
