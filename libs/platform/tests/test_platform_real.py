from __future__ import annotations

import asyncio
from typing import Any

import pytest
from faststream.rabbit import RabbitBroker
from pymongo.asynchronous.database import AsyncDatabase

from postwire_contracts import topology
from postwire_contracts.messages import SendSms
from postwire_platform.broker import (
    Publisher,
    contract_body,
    dead_queue,
    declare_topology,
    make_broker,
    work_queue,
)
from postwire_platform.clock import utcnow
from postwire_platform.mongo import Document
from postwire_platform.settings import CommonSettings, SettingsError, load_settings
from postwire_platform.tenancy import create_key, create_tenant, find_key, hash_key


class _S(CommonSettings, frozen=True, kw_only=True):
    carrier_url: str
    line_map: dict[str, str] = {}


def test_settings_are_read_from_upper_case_variables() -> None:
    s = load_settings(_S, {"CARRIER_URL": "http://c", "HTTP_PORT": "9000", "LINE_MAP": '{"1":"t"}'})
    assert (s.carrier_url, s.http_port, s.line_map) == ("http://c", 9000, {"1": "t"})


@pytest.mark.parametrize(
    ("env", "var"),
    [({}, "CARRIER_URL"), ({"CARRIER_URL": "x", "HTTP_PORT": "eighty"}, "HTTP_PORT"),
     ({"CARRIER_URL": "x", "LINE_MAP": "{nope"}, "LINE_MAP")],
)
def test_a_bad_setting_names_its_variable(env: dict[str, str], var: str) -> None:
    with pytest.raises(SettingsError, match=f"^{var}:"):
        load_settings(_S, env)


async def test_keys_are_stored_hashed_and_found_by_the_key(db: AsyncDatabase[Document]) -> None:
    tenant = await create_tenant(db, "Acme")
    key, record = await create_key(db, tenant["_id"], ["send:sms"], mode="live")
    assert key.startswith("pw_live_")
    stored = await db["api_keys"].find_one({"_id": record["_id"]})
    assert stored is not None and key not in str(stored) and stored["hash"] == hash_key(key)
    found = await find_key(db, key)
    assert found is not None and found["tenant"]["_id"] == tenant["_id"]
    assert await find_key(db, key + "x") is None


DECODERS = pytest.mark.parametrize("decoded_by", ["faststream", "contract_body"])
"""The services' subscribers decode with ``contract_body``; FastStream's own decoding is the reference."""


def _decoding(decoded_by: str) -> dict[str, Any]:
    return {"decoder": contract_body(SendSms)} if decoded_by == "contract_body" else {}


@DECODERS
async def test_confirmed_publish_reaches_the_declared_queue(amqp_url: str, decoded_by: str) -> None:
    broker: RabbitBroker = make_broker(amqp_url)
    received: asyncio.Queue[SendSms] = asyncio.Queue()

    @broker.subscriber(work_queue(topology.SMS_SEND_QUEUE), **_decoding(decoded_by))
    async def handle(cmd: SendSms) -> None:
        await received.put(cmd)

    await broker.connect()
    await declare_topology(broker)
    await broker.start()
    try:
        cmd = SendSms(message_id="m1", tenant_id="t", live=False, to="+447700900123", body="hi",
                      sender_id="Postwire", accepted_at=utcnow(), metadata={"order": "42"},
                      expires_at=utcnow())
        await Publisher(broker).publish(cmd, topology.SEND_SMS)
        got = await asyncio.wait_for(received.get(), 10)
        assert got == cmd and type(got) is SendSms
    finally:
        await broker.stop()


@DECODERS
@pytest.mark.parametrize("body", [b'{"kind":"garbage"}', b"\xff not JSON {",
                                  b'{"kind":"send.sms.v1","message_id":17}'])
async def test_undecodable_message_is_dead_lettered(amqp_url: str, decoded_by: str, body: bytes) -> None:
    broker: RabbitBroker = make_broker(amqp_url)
    handled: list[SendSms] = []

    @broker.subscriber(work_queue(topology.SMS_SEND_QUEUE), **_decoding(decoded_by))
    async def handle(cmd: SendSms) -> None:
        handled.append(cmd)

    await broker.connect()
    await declare_topology(broker)
    await broker.start()
    try:
        await broker.publish(body, exchange="postwire", routing_key=topology.SEND_SMS, persist=True)
        dead = topology.dead_letter_queue(topology.SMS_SEND_QUEUE)
        for _ in range(100):
            queue = await broker.declare_queue(dead_queue(topology.SMS_SEND_QUEUE))
            got = await queue.get(no_ack=True, fail=False)
            if got is not None:
                assert got.body == body and handled == []
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail(f"nothing reached {dead}")
    finally:
        await broker.stop()
