"""WhatsApp end to end in one process: gateway → whatsapp-dispatcher → fake Graph API → signed
notifications → provider-ingest → reporting, against the real broker and SecantusDB."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from litestar.testing import AsyncTestClient
from pymongo.asynchronous.database import AsyncDatabase

from postwire_gateway.app import create_app as create_gateway
from postwire_gateway.settings import GatewaySettings
from postwire_platform import tenancy
from postwire_platform.mongo import MESSAGES, OPT_OUTS, Document
from postwire_provider_ingest.app import create_app as create_ingest
from postwire_provider_ingest.settings import ProviderIngestSettings
from postwire_reporting.app import create_app as create_reporting
from postwire_reporting.settings import Settings as ReportingSettings
from postwire_testing.fake_graph import FakeGraph
from postwire_testing.servers import ThreadedServer
from postwire_whatsapp_dispatcher.app import create_app as create_dispatcher

from .whatsapp_support import PLATFORM_PHONE, PLATFORM_TOKEN, SECRET_KEY, make_settings

APP_SECRET = "flow-app-secret"
T = TypeVar("T")


@dataclass
class System:
    gateway: AsyncTestClient[Any]
    graph: FakeGraph
    db: AsyncDatabase[Document]
    tenant_id: str
    live: dict[str, str]
    test: dict[str, str]

    async def send(self, to: str, text: str = "Your order shipped", *, live: bool = True) -> str:
        r = await self.gateway.post("/v1/whatsapp/send", headers=self.live if live else self.test,
                                    json={"to": to, "text": text})
        assert r.status_code == 201, r.text
        return str(r.json()["data"]["id"])

    async def message(self, message_id: str) -> Document:
        doc = await self.db[MESSAGES].find_one({"_id": message_id})
        assert doc is not None
        return doc

    async def until(self, message_id: str, check: Callable[[Document], bool],
                    timeout: float = 30.0) -> Document:
        return await eventually(lambda: self._checked(message_id, check), timeout=timeout)

    async def _checked(self, message_id: str, check: Callable[[Document], bool]) -> Document | None:
        doc = await self.message(message_id)
        return doc if check(doc) else None


async def eventually(probe: Callable[[], Awaitable[T | None]], *, timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.05)


def statuses(doc: Document) -> list[tuple[str, str]]:
    return sorted((e["status"], e["source"]) for e in doc.get("timeline", []))


@asynccontextmanager
async def whatsapp_system(amqp_url: str, mongodb_url: str, db_name: str, db: AsyncDatabase[Document],
                          **graph_kwargs: Any) -> AsyncIterator[System]:
    common: dict[str, Any] = {"amqp_url": amqp_url, "mongodb_url": mongodb_url,
                              "mongodb_database": db_name, "log_json": False, "shutdown_timeout": 5.0}
    tenant = await tenancy.create_tenant(db, "Flow")
    live, _ = await tenancy.create_key(db, tenant["_id"], ["send:whatsapp", "read:whatsapp"],
                                       mode="live")
    test, _ = await tenancy.create_key(db, tenant["_id"], ["send:whatsapp", "read:whatsapp"],
                                       mode="test")
    async with AsyncExitStack() as stack:
        ingest = await stack.enter_async_context(ThreadedServer(create_ingest(ProviderIngestSettings(
            **common, whatsapp_app_secret=APP_SECRET, whatsapp_default_tenant_id=tenant["_id"],
            whatsapp_line_cache_seconds=0.0))))
        hook = f"{ingest.url}/v1/webhooks/whatsapp"
        graph = await stack.enter_async_context(FakeGraph(webhook_url=hook, app_secret=APP_SECRET,
                                                          **graph_kwargs))
        graph.tokens[PLATFORM_PHONE] = PLATFORM_TOKEN
        await stack.enter_async_context(AsyncTestClient(create_reporting(ReportingSettings(**common))))
        await stack.enter_async_context(AsyncTestClient(create_dispatcher(make_settings(
            amqp_url, mongodb_url, db_name, graph.url, whatsapp_app_secret=APP_SECRET,
            whatsapp_sandbox_webhook_url=hook, whatsapp_sandbox_status_delay=0.05,
            whatsapp_rate_per_recipient=100.0))))
        gateway = await stack.enter_async_context(AsyncTestClient(create_gateway(GatewaySettings(
            **common, whatsapp_cloud_api_enabled=True, secret_keys=[SECRET_KEY]))))
        yield System(gateway, graph, db, tenant["_id"], {"Authorization": f"Bearer {live}"},
                     {"Authorization": f"Bearer {test}"})


@pytest.fixture
async def system(amqp_url: str, mongodb_url: str, db_name: str,
                 db: AsyncDatabase[Document]) -> AsyncIterator[System]:
    async with whatsapp_system(amqp_url, mongodb_url, db_name, db, status_delay=0.05) as s:
        yield s


async def test_read_before_delivered_leaves_read_with_every_event_in_the_timeline(
        system: System) -> None:
    system.graph.statuses_for["14155552671"] = []  # the test plays Meta's notifications itself
    message_id = await system.send("+14155552671")
    sent = await system.until(message_id, lambda d: d["status"] == "SENT")
    wamid = sent["provider_message_id"]
    [accepted] = system.graph.sent_to("14155552671")
    assert wamid == accepted.wamid and accepted.callback_data == message_id

    def notification(status: str, ts: int) -> dict[str, Any]:
        return {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
            "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": PLATFORM_PHONE},
                "statuses": [{"id": wamid, "status": status, "timestamp": str(ts),
                              "recipient_id": "14155552671", "biz_opaque_callback_data": message_id}],
            }}]}]}

    now = int(time.time())
    assert (await system.graph.post_notification(notification("read", now + 3))).status_code == 200
    await system.until(message_id, lambda d: d["status"] == "READ")
    for status, ts in (("delivered", now + 2), ("sent", now + 1), ("read", now + 3)):  # late, again
        assert (await system.graph.post_notification(notification(status, ts))).status_code == 200
    done = await system.until(message_id, lambda d: len(d["timeline"]) >= 6)
    assert done["status"] == "READ" and done["read_at"] is not None
    assert statuses(done) == [
        ("DELIVERED", "meta-webhook"), ("PROCESSING", "whatsapp-dispatcher"), ("QUEUED", "gateway"),
        ("READ", "meta-webhook"), ("SENT", "meta-webhook"), ("SENT", "whatsapp-dispatcher")]
    timeline = await system.gateway.get(f"/v1/whatsapp/{message_id}/timeline", headers=system.live)
    assert [e["status"] for e in timeline.json()["data"]][-1] == "READ"


async def test_a_stop_blocks_the_next_send_and_start_allows_it_again(system: System) -> None:
    first = await system.send("+14155552672")
    await system.until(first, lambda d: d["status"] == "READ")
    reply = await system.graph.post_inbound("14155552672", "STOP", phone_number_id=PLATFORM_PHONE)
    assert reply.status_code == 200
    await eventually(lambda: system.db[OPT_OUTS].find_one(
        {"tenant_id": system.tenant_id, "channel": "whatsapp", "address": "14155552672"}))
    blocked = await system.send("+14155552672")
    failed = await system.until(blocked, lambda d: d["status"] == "FAILED")
    assert failed["error_code"] == "opted_out"
    assert len(system.graph.requests_to("14155552672")) == 1

    conversation = await system.gateway.get("/v1/whatsapp/conversations/14155552672",
                                            headers=system.live)
    assert conversation.json()["data"]["optedOut"] is True
    start = await system.graph.post_inbound("14155552672", "START", phone_number_id=PLATFORM_PHONE,
                                            timestamp=int(time.time()) + 1)
    assert start.status_code == 200
    await eventually(lambda: _gone(system))
    again = await system.send("+14155552672")
    await system.until(again, lambda d: d["status"] in ("SENT", "DELIVERED", "READ"))
    assert len(system.graph.requests_to("14155552672")) == 2


async def _gone(system: System) -> bool:
    return await system.db[OPT_OUTS].count_documents({"tenant_id": system.tenant_id}) == 0


async def test_test_keys_use_the_sandbox_whose_notifications_travel_the_signed_path(
        system: System) -> None:
    ok = await system.send("+14155552673", live=False)
    read_first = await system.send("+15005550006", live=False)
    undeliverable = await system.send("+15005550001", live=False)
    throttled = await system.send("+15005550003", live=False)
    fails_later = await system.send("+15005550005", live=False)
    done = await system.until(ok, lambda d: d["status"] == "READ")
    assert {s for s, _ in statuses(done)} >= {"SENT", "DELIVERED", "READ"}
    assert ("READ", "meta-webhook") in statuses(done)
    out_of_order = await system.until(read_first, lambda d: len(d["timeline"]) >= 6)
    assert out_of_order["status"] == "READ"
    refused = await system.until(undeliverable, lambda d: d["status"] == "FAILED")
    assert refused["error_code"] == "131026"
    await system.until(throttled, lambda d: d["status"] == "READ")
    later = await system.until(fails_later, lambda d: d["status"] == "FAILED")
    assert later["error_code"] == "131026" and later["provider_message_id"]
    assert system.graph.requests == []  # test keys never reach the Graph API
