"""What an SMPP bind receives: delivery receipts become status events, other messages inbound events.

A receipt names the carrier's id of one part. The ``dispatches`` claim of the message records every
part's key (``part_keys``, indexed), so the receipt finds its message; a multipart message is DELIVERED
only once every part's receipt said DELIVRD, FAILED as soon as one part failed, and every other receipt
lands in the timeline as a SENT event (which never moves a status backwards). A receipt that overtakes
the recording of its submit is looked up again for a few seconds; if its message is still unknown it is
published with the carrier id only and reporting parks it until the id turns up.

The receipts of messages this process submitted are matched in memory (``RecentSubmits``: the dispatcher
registers a message's receipt keys as soon as the SMSC accepted it), without a database read and
without waiting for the claim's outcome to be written; such a receipt is published once the SENT event
of its message was (bounded), so a customer hears "sent" before "delivered". Receipts of messages an
earlier process submitted are matched through ``part_keys`` in the database as before.

Mobile-originated messages (STOP and friends) are published as ``InboundEvent``s on
``event.inbound.sms``; provider-ingest applies the opt-out keywords to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import smpp34
from pymongo.asynchronous.collection import AsyncCollection

from postwire_contracts import topology
from postwire_contracts.messages import InboundEvent, StatusEvent
from postwire_contracts.status import Channel, Status
from postwire_platform.broker import BrokerUnavailable
from postwire_platform.clock import Clock, utcnow
from postwire_platform.ids import new_id
from postwire_platform.mongo import Document
from postwire_sms.receipts import (
    SmppReceipt,
    failure_reason,
    from_deliver_sm,
    outcome_of,
    parse_date,
    receipt_key,
)
from postwire_sms.segments import decode

log = logging.getLogger(__name__)

SOURCE = "smpp-dlr"
PUBLISH_ATTEMPTS = 16
RECEIPT_TYPES = frozenset({0x04, 0x20})
"""``esm_class`` message types of a receipt: SMSC delivery receipt, intermediate notification."""


ANNOUNCE_WAIT = 60.0
"""Seconds a receipt waits for its message's SENT event to be published before going out anyway.
The dispatcher always releases the wait (published or failed), so the bound only matters if the
recording of the submit hangs; under a loaded database that recording can take several seconds."""


@dataclass
class Recent:
    """A message this process submitted: what its receipts need to name it."""

    claim: Document
    announced: asyncio.Event = field(default_factory=asyncio.Event)


class RecentSubmits:
    """Receipt key → the recently submitted message it belongs to (bounded, oldest dropped first)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._by_key: OrderedDict[str, Recent] = OrderedDict()
        self._waiters: dict[str, list[asyncio.Future[Recent]]] = {}

    def add(self, keys: list[str], claim: Document) -> Recent:
        """Remember ``claim`` (``_id``, ``tenant_id``, ``provider_message_id``, ``part_keys``) under
        every one of ``keys``; a receipt waiting for one of them is woken."""
        recent = Recent(claim)
        for key in keys:
            self._by_key[key] = recent
            self._by_key.move_to_end(key)
            for waiter in self._waiters.pop(key, []):
                if not waiter.done():
                    waiter.set_result(recent)
        while len(self._by_key) > self._capacity:
            self._by_key.popitem(last=False)
        return recent

    def get(self, key: str) -> Recent | None:
        return self._by_key.get(key)

    async def wait(self, key: str, timeout: float) -> Recent | None:
        """The entry for ``key`` once added, or None after ``timeout`` seconds."""
        found = self._by_key.get(key)
        if found is not None:
            return found
        waiter: asyncio.Future[Recent] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, []).append(waiter)
        try:
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            return None
        finally:
            waiting = self._waiters.get(key)
            if waiting is not None and waiter in waiting:
                waiting.remove(waiter)
                if not waiting:
                    del self._waiters[key]


class Sink(Protocol):
    async def publish(self, message: Any, routing_key: str, *,
                      message_id: str | None = None, headers: dict[str, Any] | None = None) -> None:
        ...


class Deliveries:
    """The ``DeliverHandler`` of every SMPP route."""

    def __init__(self, dispatches: AsyncCollection[Document], sink: Sink, clock: Clock = utcnow,
                 lookup_attempts: int = 20, lookup_pause: float = 0.25,
                 recent: RecentSubmits | None = None) -> None:
        self._dispatches = dispatches
        self._sink = sink
        self._clock = clock
        self._attempts = lookup_attempts
        self._pause = lookup_pause
        self._recent = recent or RecentSubmits()

    async def __call__(self, route: str, event: smpp34.DeliverSmEvent) -> None:
        tlvs = {t.tag: t.value for t in event.tlvs}
        if event.esm_class & 0x3C in RECEIPT_TYPES:
            receipt = from_deliver_sm(event.short_message, tlvs)
            if receipt is None:
                log.warning("unreadable receipt dropped", extra={
                    "route": route, "raw": event.short_message[:200].decode("latin-1")})
                return
            await self.receipt(route, receipt)
        else:
            await self.inbound(route, event)

    async def receipt(self, route: str, receipt: SmppReceipt) -> None:
        """Publish the status event(s) one part's receipt stands for."""
        key = f"{route}:{receipt_key(receipt.carrier_id)}"
        claim = await self._find(key)
        stat = receipt.stat
        outcome = outcome_of(stat)
        base: dict[str, Any] = {
            "channel": Channel.SMS, "source": SOURCE, "provider_status": stat, "raw": receipt.raw,
            "occurred_at": parse_date(receipt.text.done_date) or self._clock(),
            "detail": {k: v for k, v in (("route", route), ("err", receipt.err),
                                          ("submit_date", receipt.text.submit_date),
                                          ("done_date", receipt.text.done_date)) if v},
        }
        part_event_id = f"smpp:{route}:{receipt.carrier_id}:{stat}"
        if claim is None:
            log.info("receipt for an unknown part; reporting parks it",
                     extra={"route": route, "carrier_id": receipt.carrier_id})
            await self._publish(_status(part_event_id, outcome, stat, receipt.err, base,
                                        provider_message_id=receipt.carrier_id))
            return
        ids = {"message_id": claim["_id"], "tenant_id": claim.get("tenant_id"),
               "provider_message_id": claim.get("provider_message_id")}
        keys: list[str] = claim.get("part_keys") or [key]
        if len(keys) == 1:
            await self._publish(_status(part_event_id, outcome, stat, receipt.err, base, **ids))
            return
        index = keys.index(key)
        base["detail"] = {**base["detail"], "part": index + 1, "parts": len(keys),
                          "part_provider_message_id": receipt.carrier_id}
        await self._dispatches.update_one({"_id": claim["_id"]},
                                          {"$set": {f"part_states.p{index}": stat}})
        if outcome == "delivered" and await self._completes(claim["_id"], len(keys), part_event_id):
            await self._publish(_status(f"{claim['_id']}:smpp:delivered", "delivered", stat,
                                        receipt.err, base, **ids))
            return
        # a failed part fails the message; anything else is a SENT line in the timeline
        await self._publish(_status(part_event_id, "failed" if outcome == "failed" else "pending",
                                    stat, receipt.err, base, **ids))

    async def _completes(self, message_id: str, parts: int, part_event_id: str) -> bool:
        """Whether this part's DELIVRD is the one that announces the message DELIVERED: every part
        has said DELIVRD and no other part's receipt announced it first. The same receipt arriving
        again announces again (the event id is the message's, so reporting keeps it once).

        Two updates by ``_id`` instead of one ``find_one_and_update``, which SecantusDB answers by
        scanning the whole collection (docs/performance.md, change 22)."""
        done = await self._dispatches.update_one(
            {"_id": message_id, **{f"part_states.p{i}": "DELIVRD" for i in range(parts)},
             "delivered_by": {"$in": [None, part_event_id]}},
            {"$set": {"delivered_by": part_event_id}})
        return done.matched_count == 1

    async def _find(self, key: str) -> Document | None:
        for attempt in range(self._attempts):
            recent = self._recent.get(key)
            if recent is not None:
                # published after its message's SENT (or after a bounded wait if that never comes)
                if not recent.announced.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(recent.announced.wait(), ANNOUNCE_WAIT)
                return recent.claim
            claim = await self._dispatches.find_one(
                {"part_keys": key}, projection=["tenant_id", "provider_message_id", "part_keys"])
            if claim is not None:
                return claim
            if attempt + 1 < self._attempts:
                await self._recent.wait(key, self._pause)  # wakes early when it is registered
        return None

    async def inbound(self, route: str, event: smpp34.DeliverSmEvent) -> None:
        """Publish a mobile-originated message for provider-ingest's keyword handling."""
        body = event.short_message
        if event.esm_class & 0x40 and body:
            body = body[1 + body[0]:]
        sender = event.source_addr
        if event.source_addr_ton == 1 and sender.isdigit():
            sender = "+" + sender
        now = self._clock()
        inbound = InboundEvent(
            event_id=f"mo:{route}:{new_id()}", channel=Channel.SMS, sender=sender,
            recipient=event.destination_addr, body=decode(body, event.data_coding),
            received_at=now, raw=body.hex(), source="smpp")
        await self._confirmed(inbound, topology.inbound_key(Channel.SMS), inbound.event_id)
        log.info("inbound sms published", extra={"route": route, "event_id": inbound.event_id})

    async def _publish(self, event: StatusEvent) -> None:
        await self._confirmed(event, topology.status_key(Channel.SMS), event.event_id)

    async def _confirmed(self, message: Any, routing_key: str, message_id: str) -> None:
        """Publish, retrying through a broker outage: the SMSC has had its deliver_sm_resp already,
        so giving up here would lose the receipt (bounded, about a minute)."""
        pause = 0.2
        for attempt in range(1, PUBLISH_ATTEMPTS + 1):
            try:
                await self._sink.publish(message, routing_key, message_id=message_id)
                return
            except BrokerUnavailable:
                if attempt == PUBLISH_ATTEMPTS:
                    log.error("receipt or MO lost: broker unavailable",
                              extra={"event_id": message_id})
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)


def _status(event_id: str, outcome: str, stat: str, err: str | None, base: dict[str, Any], *,
            message_id: str | None = None, tenant_id: str | None = None,
            provider_message_id: str | None = None) -> StatusEvent:
    status = {"delivered": Status.DELIVERED, "failed": Status.FAILED}.get(outcome, Status.SENT)
    occurred: datetime = base["occurred_at"]
    return StatusEvent(
        event_id=event_id, status=status, message_id=message_id, tenant_id=tenant_id,
        provider_message_id=provider_message_id,
        error_code=stat if status is Status.FAILED else None,
        error_reason=failure_reason(stat, err) if status is Status.FAILED else None,
        **{**base, "occurred_at": occurred})
