"""OpenTelemetry export: each kept trace is also an SDK span, batched to a collector over OTLP/HTTP.

The SDK is imported only when `tracing.otlpEndpoint` is set (it costs start-up time nobody else should
pay). A span is named `tools/call <tool>`, parented on the client's `traceparent` when it sent one, and
carries the tool, the masked key (never the key), the credits charged and the deny reason as attributes;
its ids become the kept trace's ids, so `GET /admin/tracing` and the collector show the same trace. The
batch processor exports in the background: a slow or absent collector never delays a call (spans past
its queue are dropped and counted as failed).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from paygate.tracing.recorder import Span

log = logging.getLogger("paygate.tracing")


class OtlpExport:
    """The SDK's tracer provider with a batch processor in front of `exporter` (OTLP/HTTP by default)."""

    def __init__(self, endpoint: str, service_name: str, exporter: SpanExporter | None = None) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self.exported = 0
        self.failed = 0
        inner = exporter or OTLPSpanExporter(endpoint=endpoint, timeout=5)
        self._provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        self._provider.add_span_processor(BatchSpanProcessor(_counting(inner, self)))
        self._tracer = self._provider.get_tracer("paygate-mcp")

    def start(self, span: Span) -> Any:
        from opentelemetry import trace
        from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

        context = None
        if span.parent_id is not None:
            parent = SpanContext(
                int(span.trace_id, 16), int(span.parent_id, 16), is_remote=True, trace_flags=TraceFlags(1)
            )
            context = trace.set_span_in_context(NonRecordingSpan(parent))
        handle = self._tracer.start_span(
            f"tools/call {span.tool}",
            context=context,
            kind=SpanKind.SERVER,
            start_time=int(span.started * 1e9),
            attributes={"rpc.system": "jsonrpc", "rpc.method": "tools/call", "paygate.tool": span.tool},
        )
        ids = handle.get_span_context()
        span.trace_id, span.span_id = f"{ids.trace_id:032x}", f"{ids.span_id:016x}"
        return handle

    def finish(self, span: Span, trace: dict[str, Any], end: float) -> None:
        from opentelemetry.trace import Status, StatusCode

        handle = span.handle
        attributes = {
            "paygate.request_id": trace["requestId"],
            "paygate.credits": trace["credits"],
            "paygate.gate_ms": trace["gateMs"],
            "paygate.backend_ms": trace["backendMs"],
            "paygate.outcome": trace["outcome"],
        }
        if trace["keyMasked"]:
            attributes["paygate.key_id"] = trace["keyMasked"]
        if trace["denyReason"]:
            attributes["paygate.deny_reason"] = trace["denyReason"]
        handle.set_attributes(attributes)
        if trace["outcome"] != "ok":
            handle.set_status(Status(StatusCode.ERROR, trace["denyReason"] or "error"))
        handle.end(end_time=int(end * 1e9))

    def shutdown(self) -> None:
        self._provider.shutdown()  # flushes what is queued (bounded by the exporter's timeout)


def _counting(inner: SpanExporter, counts: OtlpExport) -> SpanExporter:
    """The real exporter, counting what it sent and what failed (for /metrics and GET /admin/tracing)."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class Counting(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            try:
                result = inner.export(spans)
            except Exception:
                log.exception("tracing: the OTLP exporter failed")
                result = SpanExportResult.FAILURE
            if result == SpanExportResult.SUCCESS:
                counts.exported += len(spans)
            else:
                counts.failed += len(spans)
            return result

        def shutdown(self) -> None:
            inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return bool(inner.force_flush(timeout_millis))

    return Counting()
