"""Opt-outs and opt-ins (``OptOutChanged`` on ``notify.optout.sms``) reach the tenant's webhooks."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts import topology
from postwire_contracts.messages import OptOutChanged
from postwire_contracts.status import Channel
from postwire_platform.mongo import Document
from postwire_testing.receiver import WebhookReceiver

from .fanout_support import T0, attempts
from .fanout_support import endpoint as create_webhook_endpoint
from .fanout_support import running_fanout as running


def opt(event_type: str, tenant: str = "ten_a") -> OptOutChanged:
    return OptOutChanged(
        event_id=f"optout:mo:http:{event_type}:{tenant}", event_type=event_type, tenant_id=tenant,
        channel=Channel.SMS, address="+447700900123", opted_out=event_type == "sms_opt_out",
        keyword="STOP" if event_type == "sms_opt_out" else "START", source="inbound",
        occurred_at=T0, sender="Postwire")


async def test_opt_out_and_opt_in_webhooks(amqp_url: str, mongodb_url: str, db_name: str,
                                           db: AsyncDatabase[Document]) -> None:
    async with WebhookReceiver() as hooks:
        secret, _ = await create_webhook_endpoint(db, "ten_a", hooks.url)
        async with running(amqp_url, mongodb_url, db_name) as publisher:
            for note in (opt("sms_opt_out"), opt("sms_opt_in"), opt("sms_opt_out", "ten_b")):
                await publisher.publish(note, topology.optout_key(Channel.SMS),
                                        message_id=note.event_id)
            requests = await hooks.wait_for(lambda reqs: len(reqs) >= 2)
            records = await attempts(db, {"tenant_id": "ten_a"}, 2)
    bodies = sorted((hooks.verify(secret, r) for r in requests), key=lambda b: b["type"])
    assert [b["type"] for b in bodies] == ["sms_opt_in", "sms_opt_out"]
    assert bodies[1]["data"] == {"channel": "sms", "recipient": "+447700900123", "optedOut": True,
                                 "keyword": "STOP", "sender": "Postwire", "source": "inbound",
                                 "occurredAt": "2026-11-21T12:00:02Z"}
    assert len(hooks.requests) == 2
    assert {(r["event_type"], r["message_id"], r["outcome"]) for r in records} == {
        ("sms_opt_out", None, "delivered"), ("sms_opt_in", None, "delivered")}
