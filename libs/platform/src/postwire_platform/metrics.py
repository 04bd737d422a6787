"""Every business metric Postwire exports, defined once so the dashboards and the services agree.

Services only call the helpers here (or ``.labels(...)`` on these objects); the Grafana dashboards in
``deploy/grafana`` query exactly these names, and a test checks that each name they use is exported.
prometheus-client appends ``_total`` to counters and ``_bucket``/``_sum``/``_count`` to histograms.

Where each is counted:
- accepted: the gateway, once RabbitMQ confirmed the send command;
- sent, delivered, read, failed and the accept→sent / accept→delivered latencies: reporting, the single
  writer of status transitions, which knows ``accepted_at`` and the event's own time;
- provider latency and errors: the dispatchers, around each provider call (``provider_call``);
- queue depth, dead letters and consumer lag: ``postwire_platform.queues`` in every consuming service;
- webhook attempts: webhook-fanout.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from datetime import datetime
from typing import TypeVar

from opentelemetry import trace
from prometheus_client import Counter, Gauge, Histogram

from postwire_contracts.status import Channel, Status

T = TypeVar("T")

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)
"""Seconds, from an OTP that must arrive within seconds to an email retried for an hour."""

PROVIDER_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

MESSAGES_ACCEPTED = Counter(
    "postwire_messages_accepted", "Messages accepted by the gateway (201, command confirmed)",
    ["channel", "tenant"])
MESSAGES_SENT = Counter(
    "postwire_messages_sent", "Messages that reached SENT (handed to the provider)", ["channel", "tenant"])
MESSAGES_DELIVERED = Counter(
    "postwire_messages_delivered", "Messages that reached DELIVERED", ["channel", "tenant"])
MESSAGES_READ = Counter("postwire_messages_read", "Messages that reached READ", ["channel", "tenant"])
MESSAGES_FAILED = Counter(
    "postwire_messages_failed", "Messages that ended FAILED, by error code",
    ["channel", "tenant", "error_code"])

ACCEPT_TO_SENT = Histogram(
    "postwire_accept_to_sent_seconds", "From the gateway's acceptance to the provider's acceptance",
    ["channel"], buckets=LATENCY_BUCKETS)
ACCEPT_TO_DELIVERED = Histogram(
    "postwire_accept_to_delivered_seconds", "From the gateway's acceptance to the delivery receipt",
    ["channel"], buckets=LATENCY_BUCKETS)

PROVIDER_REQUEST = Histogram(
    "postwire_provider_request_seconds", "Provider calls (carrier, SMTP, Graph API) by outcome",
    ["channel", "provider", "outcome"], buckets=PROVIDER_BUCKETS)
PROVIDER_ERRORS = Counter(
    "postwire_provider_errors", "Provider calls that failed, by error type",
    ["channel", "provider", "error"])

QUEUE_MESSAGES = Gauge(
    "postwire_queue_messages", "Messages ready in a work or delay queue (passive declare)", ["queue"])
QUEUE_CONSUMERS = Gauge("postwire_queue_consumers", "Consumers attached to a queue", ["queue"])
DEAD_LETTER_MESSAGES = Gauge(
    "postwire_dead_letter_messages", "Messages parked in a dead-letter queue", ["queue"])
CONSUMER_LAG = Histogram(
    "postwire_consumer_lag_seconds",
    "How long a message waited in its queue before a consumer took it (since publish or the end of "
    "its retry delay)", ["queue"], buckets=LATENCY_BUCKETS)

WEBHOOK_ATTEMPTS = Counter(
    "postwire_webhook_attempts", "Webhook delivery attempts by outcome", ["outcome"])
WEBHOOK_LATENCY = Histogram("postwire_webhook_latency_seconds", "Customer endpoint answer time")

_COUNTERS = {
    Status.SENT: MESSAGES_SENT,
    Status.DELIVERED: MESSAGES_DELIVERED,
    Status.READ: MESSAGES_READ,
}

_tracer = trace.get_tracer("postwire.provider")


def message_accepted(channel: Channel | str, tenant_id: str) -> None:
    """Count one message the gateway accepted (after RabbitMQ confirmed its command)."""
    MESSAGES_ACCEPTED.labels(channel=str(channel), tenant=tenant_id).inc()


def status_reached(channel: Channel | str, tenant_id: str, status: Status, *, at: datetime,
                   accepted_at: datetime | None, error_code: str | None = None) -> None:
    """Count a message reaching ``status`` (once per message) and observe its latency from acceptance."""
    labels = {"channel": str(channel), "tenant": tenant_id}
    if status is Status.FAILED:
        MESSAGES_FAILED.labels(**labels, error_code=error_code or "unknown").inc()
        return
    counter = _COUNTERS.get(status)
    if counter is None:
        return
    counter.labels(**labels).inc()
    if accepted_at is None:
        return
    waited = max(0.0, (at - accepted_at).total_seconds())
    if status is Status.SENT:
        ACCEPT_TO_SENT.labels(channel=str(channel)).observe(waited)
    elif status is Status.DELIVERED:
        ACCEPT_TO_DELIVERED.labels(channel=str(channel)).observe(waited)


async def provider_call(channel: Channel | str, provider: str, call: Awaitable[T]) -> T:
    """Await one provider call inside a client span, timing it and counting its failure.

    ``result = await provider_call(Channel.SMS, "http", carrier.submit(request))``: the HTTP (httpx),
    SMTP or SMPP work ``call`` does runs inside the span, so an instrumented HTTP request nests under it.
    An exception is counted by its class name and re-raised unchanged.
    """
    started = time.perf_counter()
    with _tracer.start_as_current_span(
        f"{channel} provider {provider}", kind=trace.SpanKind.CLIENT,
        attributes={"postwire.channel": str(channel), "postwire.provider": provider},
    ):
        try:
            result = await call
        except Exception as exc:
            PROVIDER_REQUEST.labels(channel=str(channel), provider=provider,
                                    outcome="error").observe(time.perf_counter() - started)
            PROVIDER_ERRORS.labels(channel=str(channel), provider=provider,
                                   error=type(exc).__name__).inc()
            raise
    PROVIDER_REQUEST.labels(channel=str(channel), provider=provider,
                            outcome="ok").observe(time.perf_counter() - started)
    return result
