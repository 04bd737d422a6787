"""Traces and metrics of the running system, as an operator reads them in Tempo and Grafana.

The whole system runs as ``make run`` runs it, with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at an OTLP
receiver on 127.0.0.1 (the collector's stand-in). One live SMS with an OTP code travels gateway →
RabbitMQ → sms-dispatcher → the carrier (a real local HTTP server) → its receipt to provider-ingest →
reporting → webhook-fanout → the customer's endpoint. The test then reads the exported spans, the
headers the carrier and the endpoint received, every service's ``/metrics`` and every log file.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from postwire_cli.supervisor_conf import SERVICES
from postwire_contracts import topology
from postwire_testing.fake_carrier import FakeCarrier
from postwire_testing.otlp import OtlpReceiver, ReceivedSpan
from postwire_testing.receiver import WebhookReceiver
from postwire_testing.servers import rabbit_vhost
from postwire_testing.system import DevSystem

from .helpers import cli, wait_status
from .promql import dashboard_metrics, exported_names

pytestmark = pytest.mark.e2e

OTP_CODE = "493817"
BODY = f"Your Postwire code is {OTP_CODE}. It expires in 5 minutes."


@pytest.fixture(scope="module")
def otlp() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory, otlp: OtlpReceiver) -> Iterator[
        tuple[DevSystem, FakeCarrier]]:
    """The system with tracing on, a live carrier and queue metrics every second."""
    base = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    with FakeCarrier() as carrier, rabbit_vhost(base) as amqp_url:
        dev = DevSystem(tmp_path_factory.mktemp("postwire-traced"), amqp_url=amqp_url, env={
            **otlp.env(), "SMS_CARRIER_URL": carrier.url, "QUEUE_METRICS_INTERVAL": "1",
            "LOG_LEVEL": "INFO"})
        dev.start()
        try:
            yield dev, carrier
        finally:
            code = dev.stop()
            assert code == 0, dev.read_output()


@pytest.fixture(scope="module")
def journey(traced: tuple[DevSystem, FakeCarrier]) -> dict[str, Any]:
    """One live OTP SMS, delivered, with both webhooks received; what the test inspects later."""
    system, carrier = traced
    info = system.info
    live_key = cli(system.mongodb_url, "keys", "create", "--tenant", info["tenant_id"],
                   "--scopes", "send:sms,read:sms", "--live")["key"]

    async def run(receiver: WebhookReceiver) -> dict[str, Any]:
        cli(system.mongodb_url, "webhooks", "create", "--tenant", info["tenant_id"],
            "--state-dir", str(system.state_dir), receiver.url)  # its SECRET_KEYS seal the secret
        await asyncio.sleep(1.5)  # webhook-fanout's endpoint cache (1 s)
        async with httpx.AsyncClient(base_url=info["gateway"], timeout=10) as client:
            r = await client.post("/v1/sms/send", headers={"Authorization": f"Bearer {live_key}"},
                                  json={"to": "+447911123456", "body": BODY,
                                        "senderId": info["sender_id"], "flow": "OTP"})
            assert r.status_code == 201, r.text
            message_id = r.json()["data"]["id"]
            await wait_status(client, live_key, message_id, {"DELIVERED"}, timeout=60)

        def both(requests: list) -> bool:  # type: ignore[type-arg]
            types = {q.json()["type"] for q in requests if q.json()["data"]["messageId"] == message_id}
            return {"sms_sent", "sms_delivered"} <= types
        hooks = await receiver.wait_for(both, timeout=60)
        return {"message_id": message_id,
                "hooks": [q for q in hooks if q.json()["data"]["messageId"] == message_id]}

    with WebhookReceiver() as receiver:
        result = asyncio.run(run(receiver))
    submission = next(q for q in carrier.requests if q.path.endswith("/messages")
                      and result["message_id"].encode() in q.body)
    result["carrier_headers"] = submission.headers
    return result


def _trace_of(headers: dict[str, str]) -> str:
    value = {k.lower(): v for k, v in headers.items()}.get("traceparent")
    assert value, f"no traceparent in {sorted(headers)}"
    return value.split("-")[1]


def test_one_trace_follows_the_message_from_the_request_to_the_customer_webhook(
        journey: dict[str, Any], otlp: OtlpReceiver) -> None:
    trace_id = _trace_of(journey["carrier_headers"])  # what the carrier call carried
    for hook in journey["hooks"]:
        assert _trace_of(hook.headers) == trace_id  # each webhook attempt: the same trace

    def rooted(span: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> bool:
        for _ in range(100):  # bounded: a chain is a few dozen spans at most
            if not span.parent_id:
                return True
            if span.parent_id not in by_id:
                return False
            span = by_id[span.parent_id]
        return False

    def complete(spans: list[ReceivedSpan]) -> bool:
        # A span is exported when it ends, and a parent ends after its children: the consumer span
        # of a delivery ends only once its attempt record is written, so it may arrive a batch after
        # the attempt's client span. Wait until every attempt's chain reaches the root.
        mine = [s for s in spans if s.trace_id == trace_id]
        by_id = {s.span_id: s for s in mine}
        attempts = [s for s in mine if s.service == "webhook-fanout" and s.kind == "client"]
        return (len(attempts) >= 2 and all(rooted(a, by_id) for a in attempts)
                and any(s.service == "gateway" and s.kind == "server" for s in mine))
    spans = otlp.wait_for(complete)
    mine = [s for s in spans if s.trace_id == trace_id]
    by_id = {s.span_id: s for s in mine}
    services = {s.service for s in mine}
    assert {"gateway", "sms-dispatcher", "reporting", "webhook-fanout"} <= services

    request = next(s for s in mine if s.service == "gateway" and s.kind == "server")
    assert request.name.startswith("POST") and request.parent_id == ""  # the root of the trace
    assert request.attributes["postwire.message_id"] == journey["message_id"]
    consume = next(s for s in mine if s.service == "sms-dispatcher" and s.kind == "consumer")
    assert consume.attributes["postwire.message_id"] == journey["message_id"]
    provider = next(s for s in mine if s.name == "sms provider http")
    carrier_call = next(s for s in mine if s.service == "sms-dispatcher" and s.kind == "client"
                        and s.parent_id == provider.span_id)
    assert carrier_call.name == "POST"

    def ancestors(span: ReceivedSpan) -> list[str]:
        chain = []
        while span.parent_id in by_id:
            span = by_id[span.parent_id]
            chain.append(span.service)
        return chain
    assert "gateway" in ancestors(carrier_call)  # the carrier call descends from the HTTP request
    for attempt in (s for s in mine if s.service == "webhook-fanout" and s.kind == "client"):
        assert "reporting" in ancestors(attempt)


def test_the_carrier_callback_is_found_by_message_id_and_linked_into_the_message_trace(
        journey: dict[str, Any], otlp: OtlpReceiver) -> None:
    trace_id = _trace_of(journey["carrier_headers"])

    def callback_linked(spans: list[ReceivedSpan]) -> bool:
        callbacks = {s.trace_id for s in spans if s.service == "provider-ingest"
                     and s.kind == "server"
                     and s.attributes.get("postwire.message_id") == journey["message_id"]}
        return any(s.trace_id == trace_id and any(t in callbacks for t, _ in s.links)
                   for s in spans)
    spans = otlp.wait_for(callback_linked)
    callback = next(s for s in spans if s.service == "provider-ingest" and s.kind == "server"
                    and s.attributes.get("postwire.message_id") == journey["message_id"])
    assert callback.trace_id != trace_id  # a carrier does not propagate our context
    assert "REDACTED" in str(callback.attributes.get("http.url", "REDACTED"))


def test_no_message_body_otp_code_or_token_in_spans_or_logs(
        journey: dict[str, Any], otlp: OtlpReceiver, traced: tuple[DevSystem, FakeCarrier]) -> None:
    system, _ = traced
    token = json.loads((system.state_dir / "secrets.json").read_text())["sms_dlr_token"]
    otlp.wait_for(lambda spans: any(s.service == "provider-ingest" for s in spans))
    secrets = [OTP_CODE, BODY, token]
    spans = otlp.spans
    assert len(spans) > 10
    for span in spans:
        text = span.text()
        for secret in secrets:
            assert secret not in text, f"{secret!r} in span {span.service}: {span.name}"
    logs = list((system.state_dir / "logs").glob("*.log"))
    assert {p.stem for p in logs} >= set(SERVICES)
    records = 0
    for path in logs:
        content = path.read_text(errors="replace")
        records += content.count("\n")
        for secret in secrets:
            assert secret not in content, f"{secret!r} in {path.name}"
    assert records > 0
    # The JSON log lines of a traced request carry its trace id.
    trace_id = _trace_of(journey["carrier_headers"])
    dispatcher_log = (system.state_dir / "logs" / "sms-dispatcher.log").read_text()
    assert re.search(rf'"trace_id":"{trace_id}"', dispatcher_log)


def _scrape(system: DevSystem) -> dict[str, str]:
    pages = {}
    with httpx.Client(timeout=10) as client:
        for offset, name in enumerate(SERVICES):
            r = client.get(f"http://127.0.0.1:{system.base_port + offset}/metrics")
            assert r.status_code == 200, name
            pages[name] = r.text
    return pages


def test_every_metric_the_dashboards_query_is_exported_by_a_service(
        journey: dict[str, Any], traced: tuple[DevSystem, FakeCarrier], repo_root: Path) -> None:
    system, _ = traced
    queried = dashboard_metrics(repo_root / "deploy" / "grafana" / "dashboards")
    assert len(queried) >= 15
    pages = _scrape(system)
    exported: set[str] = set()
    for page in pages.values():
        exported |= exported_names(page)
    missing = sorted(queried - exported)
    assert not missing, f"dashboards query metrics no service exports: {missing}"


def test_the_journey_shows_up_in_the_business_metrics(
        journey: dict[str, Any], traced: tuple[DevSystem, FakeCarrier]) -> None:
    system, _ = traced
    tenant = system.info["tenant_id"]

    def sample(pages: dict[str, str], service: str, name: str, **labels: str) -> float:
        for family in text_string_to_metric_families(pages[service]):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return float(s.value)
        return 0.0

    async def settled() -> dict[str, str]:
        for _ in range(100):  # queue gauges appear on the monitors' first rounds (every 1 s)
            pages = _scrape(system)
            if sample(pages, "sms-dispatcher", "postwire_queue_consumers",
                      queue="sms-dispatcher.send") >= 1:
                return pages
            await asyncio.sleep(0.2)
        raise AssertionError("no queue metrics from sms-dispatcher")
    pages = asyncio.run(settled())
    sms = {"channel": "sms", "tenant": tenant}
    assert sample(pages, "gateway", "postwire_messages_accepted_total", **sms) >= 1
    assert sample(pages, "reporting", "postwire_messages_sent_total", **sms) >= 1
    assert sample(pages, "reporting", "postwire_messages_delivered_total", **sms) >= 1
    assert sample(pages, "reporting", "postwire_accept_to_delivered_seconds_count",
                  channel="sms") >= 1
    assert sample(pages, "sms-dispatcher", "postwire_provider_request_seconds_count",
                  channel="sms", provider="http", outcome="ok") >= 1
    # flow "OTP": the message travelled the OTP lane, not the bulk queue.
    assert sample(pages, "sms-dispatcher", "postwire_consumer_lag_seconds_count",
                  queue=topology.SMS_OTP_QUEUE) >= 1
    assert sample(pages, "webhook-fanout", "postwire_webhook_attempts_total",
                  outcome="delivered") >= 2
    for queue in (topology.SMS_SEND_QUEUE, topology.SMS_OTP_QUEUE):
        assert sample(pages, "sms-dispatcher", "postwire_dead_letter_messages",
                      queue=topology.dead_letter_queue(queue)) == 0
