"""Test keys go to the sandbox, whose receipts reach a running provider-ingest like a carrier's."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from postwire_contracts import topology
from postwire_contracts.status import Status
from postwire_provider_ingest.app import create_app as create_ingest
from postwire_provider_ingest.settings import ProviderIngestSettings
from postwire_testing.servers import ThreadedServer
from postwire_testing.taps import EventTap

from .sms_support import command, make_settings, running


@pytest.fixture
async def ingest_url(amqp_url: str, mongodb_url: str, db_name: str) -> AsyncIterator[str]:
    settings = ProviderIngestSettings(amqp_url=amqp_url, mongodb_url=mongodb_url,
                                      mongodb_database=db_name, sms_dlr_token="s3cret",
                                      shutdown_timeout=5.0)
    async with ThreadedServer(create_ingest(settings)) as server:
        yield f"{server.url}/v1/webhooks/sms/dlr"


async def test_sandbox_outcomes_and_receipts_through_ingest(
        tap: EventTap, amqp_url: str, mongodb_url: str, db_name: str, ingest_url: str) -> None:
    settings = make_settings(amqp_url, mongodb_url, db_name, sms_dlr_callback_url=ingest_url,
                             sms_dlr_token="s3cret")
    async with running(settings):
        ok, undeliverable, rejected, flaky = (
            command(to, live=False) for to in
            ("+447700900123", "+15005550002", "+15005550001", "+15005550005"))
        for cmd in (ok, undeliverable, rejected, flaky):
            await tap.publisher.publish(cmd, topology.SEND_SMS)

        delivered = await tap.wait_for(ok.message_id, Status.DELIVERED)
        sent = tap.of(ok.message_id, Status.SENT)[0]
        assert sent.detail == {"carrier": "sandbox"}
        assert delivered.provider_message_id == sent.provider_message_id
        assert delivered.source == "carrier-dlr" and delivered.provider_status == "DELIVRD"
        assert delivered.event_id == f"dlr:{sent.provider_message_id}:DELIVRD"
        assert delivered.raw and "stat:DELIVRD" in delivered.raw

        failed = await tap.wait_for(undeliverable.message_id, Status.FAILED)
        assert failed.source == "carrier-dlr" and failed.error_code == "UNDELIV"

        refused = await tap.wait_for(rejected.message_id, Status.FAILED)
        assert refused.error_code == "invalid_destination" and refused.source == "sms-dispatcher"
        assert not tap.of(rejected.message_id, Status.SENT)

        await tap.wait_for(flaky.message_id, Status.DELIVERED)
        assert len(tap.of(flaky.message_id, Status.SENT)) == 1
