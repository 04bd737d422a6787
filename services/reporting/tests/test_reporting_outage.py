"""MongoDB going away while events arrive: the events are handed back to RabbitMQ, never lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import REGISTRY

from postwire_contracts.status import Status
from postwire_platform.mongo import make_client
from postwire_testing.servers import SecantusProcess, free_port

from .reporting_support import bus, event, eventually, has_timeline, insert_message, message
from .reporting_support import running_reporting as running


async def test_events_survive_a_database_outage(amqp_url: str, tmp_path: Path) -> None:
    port, storage = free_port(), str(tmp_path / "secantus")
    server = SecantusProcess(port=port, storage=storage)
    await asyncio.to_thread(server.start)
    client = make_client(server.url, timeout_ms=2000)
    db = client["outage"]
    requeued_before = REGISTRY.get_sample_value("postwire_reporting_requeued_total") or 0.0
    try:
        mid = await insert_message(db)
        async with running(amqp_url, server.url, "outage", retry_pause=0.2), bus(amqp_url) as wire:
            await wire.publish(event(Status.PROCESSING, message_id=mid, seconds=1))
            await eventually(has_timeline(db, mid, 2))
            await asyncio.to_thread(server.stop)
            await wire.publish(event(Status.SENT, message_id=mid, provider_id="o-1", seconds=2))
            await wire.publish(event(Status.DELIVERED, provider_id="o-1", seconds=3))
            await asyncio.sleep(6)  # longer than the service's server-selection timeout
            server = SecantusProcess(port=port, storage=storage)
            await asyncio.to_thread(server.start)
            await eventually(has_timeline(db, mid, 4), timeout=30)
            assert (await message(db, mid))["status"] == "DELIVERED"
    finally:
        await client.close()
        await asyncio.to_thread(server.stop)
    assert (REGISTRY.get_sample_value("postwire_reporting_requeued_total") or 0.0) > requeued_before
