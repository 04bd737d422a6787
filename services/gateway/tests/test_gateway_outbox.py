"""The outbox relay publishes stored messages that were never published, once their grace is over."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_gateway.settings import GatewaySettings
from postwire_platform.clock import utcnow
from postwire_platform.mongo import Document
from postwire_platform.secrets_at_rest import generate_key

from .gateway_support import SendQueue, eventually


@pytest.fixture
def settings(amqp_url: str, mongodb_url: str, db_name: str) -> GatewaySettings:
    return GatewaySettings(amqp_url=amqp_url, mongodb_url=mongodb_url, mongodb_database=db_name,
                           log_json=False, outbox_interval_seconds=0.2, outbox_grace_seconds=10,
                           secret_keys=[generate_key()])


def stored(message_id: str, *, age: timedelta, **extra: Any) -> Document:
    accepted = utcnow() - age
    doc: Document = {
        "_id": message_id, "tenant_id": "ten_x", "channel": "sms", "live": False,
        "status": "QUEUED", "to": "+14155552671", "body": "from the outbox",
        "sender_id": "Postwire", "flow": "OTP", "metadata": {"k": "v"}, "external_id": "e-1",
        "accepted_at": accepted, "updated_at": accepted, "published": False, "timeline": []}
    doc["command"] = {
        "kind": "send.sms.v1", "message_id": message_id, "tenant_id": "ten_x", "live": False,
        "to": "+14155552671", "body": "from the outbox", "sender_id": "Postwire", "flow": "OTP",
        "metadata": {"k": "v"}, "external_id": "e-1", "accepted_at": accepted.isoformat()}
    if extra.get("body", "") is None:
        doc["command"]["body"] = None
    doc.update(extra)
    return doc


async def test_overdue_unpublished_messages_are_published_and_marked(
        client: AsyncTestClient[Any], db: AsyncDatabase[Document], send_queue: SendQueue) -> None:
    await db["messages"].insert_many([
        stored("overdue", age=timedelta(minutes=1)),
        stored("fresh", age=timedelta(seconds=0)),  # still within its grace: a request owns it
        stored("done", age=timedelta(minutes=1), published=True),
        stored("broken", age=timedelta(minutes=2), body=None),  # cannot be rebuilt: skipped
    ])
    published = await send_queue.take(1, timeout=5, settle=0.6)
    assert [command.message_id for command, _ in published] == ["overdue"]
    command, message = published[0]
    assert message.message_id == "overdue"
    assert (command.tenant_id, command.live, command.to, command.body, command.sender_id,
            command.flow, command.metadata, command.external_id) == (
        "ten_x", False, "+14155552671", "from the outbox", "Postwire", "OTP", {"k": "v"}, "e-1")

    async def marked() -> bool:
        doc = await db["messages"].find_one({"_id": "overdue"})
        return bool(doc and doc["published"])

    await eventually(marked)
    unpublished = {d["_id"] async for d in db["messages"].find({"published": False})}
    assert unpublished == {"fresh", "broken"}
