"""Reporting counts each status a message reaches once, and its latency from acceptance."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts.status import Status
from postwire_platform.mongo import Document

from .reporting_support import Bus, bus, event, eventually, has_timeline, insert_message
from .reporting_support import running_reporting as running


@pytest.fixture
async def wire(amqp_url: str, mongodb_url: str, db_name: str) -> AsyncIterator[Bus]:
    async with running(amqp_url, mongodb_url, db_name), bus(amqp_url) as b:
        yield b


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_sent_and_delivered_are_counted_once_per_message_with_their_latency(
        wire: Bus, db: AsyncDatabase[Document]) -> None:
    tenant = f"ten_{uuid.uuid4().hex[:8]}"
    mid = await insert_message(db, tenant_id=tenant)  # accepted at T0
    await wire.publish(event(Status.PROCESSING, message_id=mid, seconds=1))
    await wire.publish(event(Status.SENT, message_id=mid, provider_id="m-1", seconds=2))
    await wire.publish(event(Status.SENT, message_id=mid, provider_id="m-1", seconds=4,
                             provider_status="ENROUTE"))
    await eventually(has_timeline(db, mid, 4))
    delivered_before = _value("postwire_accept_to_delivered_seconds_count", channel="sms")
    await wire.publish(event(Status.DELIVERED, message_id=mid, provider_id="m-1", seconds=7))
    await wire.publish(event(Status.DELIVERED, message_id=mid, provider_id="m-1", seconds=8))
    await eventually(has_timeline(db, mid, 6))

    async def all_announced() -> bool:  # counted just before each notification is published
        return len(await wire.notes_for(mid)) >= 5
    await eventually(all_announced)
    assert _value("postwire_messages_sent_total", channel="sms", tenant=tenant) == 1
    assert _value("postwire_messages_delivered_total", channel="sms", tenant=tenant) == 1
    assert _value("postwire_accept_to_delivered_seconds_count", channel="sms") - delivered_before == 1
    # 7 s after acceptance lands in the 10 s bucket, not in the 5 s one.
    le10 = _value("postwire_accept_to_delivered_seconds_bucket", channel="sms", le="10.0")
    le5 = _value("postwire_accept_to_delivered_seconds_bucket", channel="sms", le="5.0")
    assert le10 - le5 >= 1


async def test_a_failure_is_counted_with_its_error_code_and_a_late_one_is_not(
        wire: Bus, db: AsyncDatabase[Document]) -> None:
    tenant = f"ten_{uuid.uuid4().hex[:8]}"
    failed = await insert_message(db, tenant_id=tenant)
    await wire.publish(event(Status.FAILED, message_id=failed, seconds=1, error_code="UNDELIV"))
    delivered = await insert_message(db, tenant_id=tenant)
    await wire.publish(event(Status.DELIVERED, message_id=delivered, seconds=1))
    await eventually(has_timeline(db, delivered, 2))
    # A FAILED after DELIVERED stays in the timeline but does not fail the message.
    await wire.publish(event(Status.FAILED, message_id=delivered, seconds=2, error_code="EXPIRED"))
    await eventually(has_timeline(db, failed, 2))
    await eventually(has_timeline(db, delivered, 3))

    async def all_announced() -> bool:
        return len(await wire.notes_for(failed)) >= 1 and len(await wire.notes_for(delivered)) >= 2
    await eventually(all_announced)

    assert _value("postwire_messages_failed_total", channel="sms", tenant=tenant,
                  error_code="UNDELIV") == 1
    assert _value("postwire_messages_failed_total", channel="sms", tenant=tenant,
                  error_code="EXPIRED") == 0
    assert _value("postwire_messages_delivered_total", channel="sms", tenant=tenant) == 1
