"""The gateway's OTP lane: an OTP's insert does not wait for a bulk group on its way to MongoDB."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from postwire_contracts import topology
from postwire_contracts.messages import SendSms
from postwire_gateway.accept import Acceptor, GroupInserter, Prepared, with_command
from postwire_gateway.published import PublishedMarker
from postwire_gateway.settings import GatewaySettings
from postwire_platform.broker import Publisher, declare_topology
from postwire_platform.clock import utcnow
from postwire_platform.ids import new_id
from postwire_platform.mongo import MESSAGES, Document, make_client
from postwire_platform.secrets_at_rest import generate_key
from postwire_platform.service import Runtime, new_broker

BULK = 2000  # two groups of GroupInserter's 1,000


@pytest.fixture
async def runtime(amqp_url: str, mongodb_url: str, db_name: str) -> AsyncIterator[Runtime]:
    settings = GatewaySettings(amqp_url=amqp_url, mongodb_url=mongodb_url, mongodb_database=db_name,
                               log_json=False, secret_keys=[generate_key()])
    rt = Runtime(settings=settings, broker=new_broker(settings))
    rt.mongo = make_client(mongodb_url)
    await rt.broker.connect()
    await declare_topology(rt.broker)
    rt.publisher = Publisher(rt.broker)
    yield rt
    await rt.broker.stop()
    await rt.mongo.drop_database(db_name)
    await rt.mongo.close()


def prepared(flow: str) -> Prepared:
    now = utcnow()
    command = SendSms(message_id=new_id(), tenant_id="ten_x", live=True, to="+14155552671",
                      body="Your code is 1234" if flow == "OTP" else "Newsletter",
                      sender_id="Postwire", flow=flow, accepted_at=now)  # type: ignore[arg-type]
    doc: Document = {"_id": command.message_id, "tenant_id": "ten_x", "channel": "sms",
                     "flow": flow, "status": "QUEUED", "accepted_at": now, "published": False}
    return Prepared(with_command(doc, command), command, topology.sms_send_key(flow))


async def test_an_otp_is_stored_while_bulk_groups_are_still_on_their_way(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    acceptor = Acceptor(runtime, PublishedMarker(runtime))
    stored: list[list[str]] = []  # the flows of each insert_many, in the order they completed
    original = GroupInserter._insert_many

    async def recording(self: GroupInserter, docs: list[Document]) -> list[BaseException | None]:
        outcome = await original(self, docs)
        stored.append(sorted({str(d["flow"]) for d in docs}))
        return outcome

    monkeypatch.setattr(GroupInserter, "_insert_many", recording)
    bulk = [asyncio.create_task(acceptor.accept_one(prepared("STANDARD"))) for _ in range(BULK)]
    await asyncio.sleep(0)  # the first group leaves; the second waits for it
    await acceptor.accept_one(prepared("OTP"))
    await asyncio.gather(*bulk)
    assert await runtime.db[MESSAGES].count_documents({"flow": "STANDARD"}) == BULK
    # without the lane the OTP rides in a third group, after both bulk groups
    assert stored.index(["OTP"]) < stored.index(["STANDARD"], stored.index(["STANDARD"]) + 1)
