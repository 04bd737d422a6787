"""An OTLP/HTTP trace receiver on 127.0.0.1, standing in for the OpenTelemetry collector in tests.

Services started with ``OTEL_EXPORTER_OTLP_ENDPOINT=<receiver.url>`` export their spans here (protobuf
over HTTP, ``POST /v1/traces``); the receiver decodes them into plain ``ReceivedSpan`` records::

    with OtlpReceiver() as otlp:
        ...  # run services with otlp.env()
        spans = otlp.wait_for(lambda spans: any(s.name == "..." for s in spans))
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from litestar import Litestar, Request, Response, post
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from .servers import Served, ThreadedServer

KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


@dataclass(frozen=True)
class ReceivedSpan:
    """One exported span, ids in lower-case hex."""

    service: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    links: tuple[tuple[str, str], ...]
    events: tuple[tuple[str, dict[str, Any]], ...]

    def text(self) -> str:
        """Everything the span carries, as one string (to look for what must not be there)."""
        parts = [self.name, *map(str, self.attributes.values())]
        for name, attributes in self.events:
            parts += [name, *map(str, attributes.values())]
        return "\n".join(parts)


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def _attributes(items: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in items}


def decode(body: bytes) -> list[ReceivedSpan]:
    """The spans of one ``ExportTraceServiceRequest``."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        service = str(_attributes(resource_spans.resource.attributes).get("service.name", ""))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(ReceivedSpan(
                    service=service, name=span.name, kind=KINDS.get(span.kind, str(span.kind)),
                    trace_id=span.trace_id.hex(), span_id=span.span_id.hex(),
                    parent_id=span.parent_span_id.hex(), attributes=_attributes(span.attributes),
                    links=tuple((link.trace_id.hex(), link.span_id.hex()) for link in span.links),
                    events=tuple((e.name, _attributes(e.attributes)) for e in span.events),
                ))
    return spans


class OtlpReceiver(Served):
    """Collects every span POSTed to ``{url}/v1/traces``."""

    def __init__(self) -> None:
        self._spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()

        @post("/v1/traces", status_code=200)
        async def traces(request: Request[Any, Any, Any]) -> Response[bytes]:
            body = await request.body()
            if request.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            received = decode(body)
            with self._lock:
                self._spans.extend(received)
            return Response(ExportTraceServiceResponse().SerializeToString(),
                            media_type="application/x-protobuf")

        self._server = ThreadedServer(Litestar(route_handlers=[traces]), lifespan="off")

    @property
    def url(self) -> str:
        """The endpoint to put in ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
        return self._server.url

    def env(self) -> dict[str, str]:
        """What a service needs to export here quickly (batches every 200 ms)."""
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": self.url,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_BSP_SCHEDULE_DELAY": "200"}

    @property
    def spans(self) -> list[ReceivedSpan]:
        """A copy of every span received so far."""
        with self._lock:
            return list(self._spans)

    def wait_for(self, check: Callable[[list[ReceivedSpan]], bool],
                 timeout: float = 60.0) -> list[ReceivedSpan]:
        """Bounded poll until ``check(spans)`` holds; returns the spans then."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.spans
            if check(spans):
                return spans
            if time.monotonic() > deadline:
                names = sorted({f"{s.service}: {s.name}" for s in spans})
                raise AssertionError(f"spans never matched within {timeout}s; got {names}")
            time.sleep(0.1)

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()
