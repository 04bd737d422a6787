"""``whatsapp_inbound``: an InboundReceived notification reaches the tenant's endpoints, signed."""

from __future__ import annotations

import asyncio

from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts import topology
from postwire_contracts.messages import InboundReceived
from postwire_contracts.status import Channel
from postwire_platform.mongo import WEBHOOK_ATTEMPTS, Document
from postwire_testing.receiver import WebhookReceiver

from .fanout_support import T0
from .fanout_support import endpoint as create_webhook_endpoint
from .fanout_support import running_fanout as running


async def test_an_inbound_whatsapp_message_is_delivered_to_subscribed_endpoints(
        amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document]) -> None:
    async with WebhookReceiver() as inbound_hook, WebhookReceiver() as status_only:
        secret, _ = await create_webhook_endpoint(db, "ten_a", inbound_hook.url,
                                                  events=["whatsapp_inbound"])
        await create_webhook_endpoint(db, "ten_a", status_only.url, events=["whatsapp_delivered"])
        note = InboundReceived(
            event_id="wa-in:wamid.1", event_type="whatsapp_inbound", tenant_id="ten_a",
            channel=Channel.WHATSAPP, sender="16505551234", recipient="106540352242922",
            body="STOP", occurred_at=T0, contact_name="Sheena Nelson",
            provider_message_id="wamid.1", opt_change="opted_out")
        async with running(amqp_url, mongodb_url, db_name) as publisher:
            await publisher.publish(note, topology.notify_inbound_key(Channel.WHATSAPP),
                                    message_id=note.event_id)
            [request] = await inbound_hook.wait_for(lambda reqs: len(reqs) >= 1)
            for _ in range(100):
                if await db[WEBHOOK_ATTEMPTS].count_documents({"event_id": note.event_id}):
                    break
                await asyncio.sleep(0.05)
        assert status_only.requests == []
    body = inbound_hook.verify(secret, request)
    assert body == {"type": "whatsapp_inbound", "timestamp": "2026-11-21T12:00:02Z", "data": {
        "channel": "whatsapp", "from": "16505551234", "to": "106540352242922",
        "contactName": "Sheena Nelson", "messageType": "text", "body": "STOP",
        "providerMessageId": "wamid.1", "optChange": "opted_out",
        "occurredAt": "2026-11-21T12:00:02Z"}}
    record = await db[WEBHOOK_ATTEMPTS].find_one({"event_id": note.event_id})
    assert record is not None and record["message_id"] is None and record["outcome"] == "delivered"
