"""OpenTelemetry: one trace per message, exported over OTLP when the standard ``OTEL_*`` variables ask.

Off (no SDK, no instrumentation, nothing exported) unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set and ``OTEL_SDK_DISABLED`` is not true. When on:
- HTTP requests served by Litestar get server spans (``server_middleware``);
- RabbitMQ hops carry the W3C trace context in message headers (FastStream's telemetry middleware, in
  ``service.new_broker``);
- outbound httpx requests (carriers, Meta, customer webhooks) get client spans and a ``traceparent``;
- ``annotate`` tags spans with the message id, tenant and channel, so a provider callback (a new trace:
  carriers do not propagate ours) is found by message id, and reporting links it into the message's
  trace (``message_trace``).
Exporter, sampler and resource follow the SDK's own variables (``OTEL_EXPORTER_OTLP_PROTOCOL``,
``OTEL_TRACES_SAMPLER``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_SERVICE_NAME``, ``OTEL_BSP_*``).

Nothing here records a message body, an OTP code or a query string value: URL attributes are redacted.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

_PROPAGATOR = TraceContextTextMapPropagator()
_URL_ATTRIBUTES = ("http.url", "url.full")
_QUERY_ATTRIBUTES = ("url.query",)
_TARGET_ATTRIBUTES = ("http.target",)
_ANNOTATED = ("message_id", "event_id", "tenant_id", "channel", "status", "event_type")

_state: dict[str, Any] = {"enabled": False, "provider": None}

tracer = trace.get_tracer("postwire")


def wanted(env: Mapping[str, str] | None = None) -> bool:
    """True when the environment asks for traces to be exported."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def enabled() -> bool:
    """True once ``setup`` installed the SDK in this process."""
    return bool(_state["enabled"])


def setup(service: str, env: Mapping[str, str] | None = None) -> bool:
    """Install the SDK tracer provider and instrument httpx when tracing is wanted; idempotent."""
    if _state["enabled"]:
        return True
    env = os.environ if env is None else env
    if not wanted(env):
        return False
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({} if env.get("OTEL_SERVICE_NAME") else {"service.name": service})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(_exporter(env)))
    trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument(request_hook=_scrub_client_span,
                                         async_request_hook=_scrub_client_span_async)
    _state.update(enabled=True, provider=provider)
    log.info("tracing on", extra={"otlp_endpoint": redact_url(
        env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""))})
    return True


def shutdown() -> None:
    """Flush and stop the exporter (spans still buffered are sent)."""
    provider = _state["provider"]
    if provider is not None:
        provider.shutdown()


def _exporter(env: Mapping[str, str]) -> Any:
    protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip().lower()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

        return Grpc()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

    return Http()


def server_middleware() -> Any:
    """Litestar middleware giving every HTTP request (but health and metrics) a server span."""
    from litestar.plugins.opentelemetry import OpenTelemetryConfig

    return OpenTelemetryConfig(
        exclude=["^/healthz$", "^/readyz$", "^/metrics$"],
        server_request_hook_handler=_scrub_server_span,
        exclude_spans=["receive", "send"],
    ).middleware


def redact_url(url: str) -> str:
    """``url`` without credentials and with every query value replaced by ``REDACTED``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "REDACTED"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, redact_query(parts.query), parts.fragment))


def redact_query(query: str) -> str:
    """A query string with every value replaced by ``REDACTED`` (the names stay, they help)."""
    if not query:
        return query
    return urlencode([(name, "REDACTED") for name, _ in parse_qsl(query, keep_blank_values=True)])


def _scrub(span: Span) -> None:
    attributes = getattr(span, "attributes", None)
    if not attributes or not span.is_recording():
        return
    for key in _URL_ATTRIBUTES:
        if isinstance(value := attributes.get(key), str):
            span.set_attribute(key, redact_url(value))
    for key in _QUERY_ATTRIBUTES:
        if isinstance(value := attributes.get(key), str):
            span.set_attribute(key, redact_query(value))
    for key in _TARGET_ATTRIBUTES:
        if isinstance(value := attributes.get(key), str) and "?" in value:
            path, query = value.split("?", 1)
            span.set_attribute(key, f"{path}?{redact_query(query)}")


def _scrub_server_span(span: Span, scope: dict[str, Any]) -> None:
    _scrub(span)


def _scrub_client_span(span: Span, request: Any) -> None:
    _scrub(span)


async def _scrub_client_span_async(span: Span, request: Any) -> None:
    _scrub(span)


def annotate(message: Any, span: Span | None = None, *, keep: bool = False) -> None:
    """Tag ``span`` (default: the current one) with the ids a message carries (never its content).

    ``keep``: leave attributes the span already has (a consumer span publishing its outcome keeps
    the ids of the message it consumed).
    """
    span = span or trace.get_current_span()
    if not span.is_recording():
        return
    existing = getattr(span, "attributes", None) or {}
    inner = getattr(message, "notification", None)  # a webhook delivery job wraps its notification
    for source in (message, inner):
        if source is None:
            continue
        for name in _ANNOTATED:
            value = getattr(source, name, None)
            key = f"postwire.{name}"
            if value is not None and not (keep and key in existing):
                span.set_attribute(key, str(value))


def traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, to store with a message; None when not tracing."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def context_of(parent: str | None) -> otel_context.Context | None:
    """The context a stored ``traceparent`` stands for (None when absent or malformed)."""
    if not parent:
        return None
    ctx = _PROPAGATOR.extract({"traceparent": parent})
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


class Origins:
    """The span each in-flight item was handed in under, for work a batch does later in another task.

    A micro-batcher writes events in its own task, outside the consumer spans that received them;
    ``held`` remembers the receiving span while its handler waits for the batch.
    """

    def __init__(self) -> None:
        self._spans: dict[str, SpanContext] = {}

    @contextmanager
    def held(self, key: str) -> Iterator[None]:
        """Remember the current span under ``key`` until the block ends."""
        here = trace.get_current_span().get_span_context()
        if here.is_valid:
            self._spans[key] = here
        try:
            yield
        finally:
            self._spans.pop(key, None)

    def get(self, key: str) -> SpanContext | None:
        """The span ``key`` was handed in under, if it is still held."""
        return self._spans.get(key)


@contextmanager
def message_trace(name: str, parent: str | None, *, origin: SpanContext | None = None,
                  attributes: Mapping[str, str] | None = None) -> Iterator[Span]:
    """A span in the message's own trace (``parent``: its stored traceparent), linked to ``origin``.

    Work done for a message on behalf of another trace (a provider callback recorded by reporting)
    continues the message's trace, and the link leads back to the callback's trace. Without a stored
    parent the span is a child of ``origin`` (default: the current span).
    """
    origin = origin if origin is not None else trace.get_current_span().get_span_context()
    ctx = context_of(parent)
    links = None
    if ctx is None:
        ctx = trace.set_span_in_context(NonRecordingSpan(origin)) if origin.is_valid else None
    elif origin.is_valid and origin.trace_id != trace.get_current_span(ctx).get_span_context().trace_id:
        links = [Link(origin)]
    with tracer.start_as_current_span(name, context=ctx, kind=SpanKind.INTERNAL, links=links,
                                      attributes=dict(attributes or {})) as span:
        yield span
