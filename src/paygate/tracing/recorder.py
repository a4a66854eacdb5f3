"""The traces: which calls are sampled, the spans kept for GET /admin/tracing, and their export.

One trace per sampled `tools/call` with the reference's timing breakdown: `gateMs` (the gate, the charge
and every stage before the backend), `backendMs` (the request upstream, retries included) and
`durationMs` (all of it). A client's W3C `traceparent` is continued (its trace id, its span as parent; a
client that says "sampled" is always traced); otherwise a call is traced with probability `sampleRate`.
The last `maxTraces` are kept in memory, per instance; the settings are in the store's meta
(`tracing.settings`), so a restart keeps an admin's change. With OTLP export configured each trace is
also an OpenTelemetry span (tracing/otel.py).
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paygate.core.domain_errors import Invalid
from paygate.events.hub import EventHub
from paygate.store.base import Store
from paygate.tracing.context import parse_traceparent

log = logging.getLogger("paygate.tracing")

META_TRACING = "tracing.settings"
MAX_TRACES_LIMIT = 100_000
LIST_LIMIT = 1000


@dataclass(slots=True)
class Span:
    """One traced call in progress; `end` turns it into a kept trace."""

    trace_id: str
    span_id: str
    parent_id: str | None
    tool: str
    request_id: str
    started: float  # time.time()
    started_perf: float
    backend_s: float = 0.0
    handle: Any = None  # the OpenTelemetry span, when exporting
    attributes: dict[str, Any] = field(default_factory=dict)


class Exporter(Protocol):
    exported: int
    failed: int

    def start(self, span: Span) -> Any: ...
    def finish(self, span: Span, trace: dict[str, Any], end: float) -> None: ...
    def shutdown(self) -> None: ...


class Tracing:
    """The sampler, the kept traces and the admin operations."""

    def __init__(
        self,
        store: Store,
        events: EventHub,
        enabled: bool,
        sample_rate: float,
        max_traces: int,
        exporter: Exporter | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.events = events
        self.enabled = enabled
        self.sample_rate = sample_rate
        self.max_traces = max_traces
        self.exporter = exporter
        self.rand = rand
        self.traces: deque[dict[str, Any]] = deque(maxlen=max_traces)
        self.recorded = 0
        self.on_switch: list[Callable[[], None]] = []  # the traffic chains are rebuilt when tracing turns on/off

    # --- the call path (traffic/tracing_stages.py) -----------------------------------------------------
    def begin(self, tool: str, request_id: str, client_traceparent: bytes | None) -> Span | None:
        """A span for this call when it is sampled, else None."""
        parent = parse_traceparent(client_traceparent)
        if parent is not None and parent[2]:
            sampled = True
        else:
            sampled = self.sample_rate >= 1.0 or (self.sample_rate > 0 and self.rand() < self.sample_rate)
        if not sampled:
            return None
        span = Span(
            parent[0] if parent else secrets.token_hex(16),
            secrets.token_hex(8),
            parent[1] if parent else None,
            tool,
            request_id,
            time.time(),
            time.perf_counter(),
        )
        if self.exporter is not None:
            span.handle = self.exporter.start(span)  # the SDK's own ids, so the exported and kept traces agree
        return span

    def end(self, span: Span, key_masked: str | None, credits: int | None, error: dict[str, Any] | None) -> None:
        duration = time.perf_counter() - span.started_perf
        data = error.get("data") if error else None
        deny_reason = data.get("reason") if isinstance(data, dict) else None
        trace = {
            "traceId": span.trace_id,
            "spanId": span.span_id,
            "parentSpanId": span.parent_id,
            "requestId": span.request_id,
            "tool": span.tool,
            "keyMasked": key_masked,
            "startedAt": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(span.started))
            + f".{int(span.started * 1000) % 1000:03d}Z",
            "durationMs": round(duration * 1000, 3),
            "gateMs": round(max(duration - span.backend_s, 0.0) * 1000, 3),
            "backendMs": round(span.backend_s * 1000, 3),
            "credits": credits or 0,
            "outcome": "ok" if error is None else ("denied" if deny_reason else "error"),
            "denyReason": deny_reason,
            "errorCode": error.get("code") if error else None,
        }
        self.traces.append(trace)
        self.recorded += 1
        if self.exporter is not None and span.handle is not None:
            try:
                self.exporter.finish(span, trace, time.time())
            except Exception:  # an exporter's failure never fails a call
                log.exception("tracing: exporting a span failed")

    # --- admin ---------------------------------------------------------------------------------------
    def configure(
        self, actor: str, enabled: bool | None, sample_rate: float | None, max_traces: int | None
    ) -> dict[str, Any]:
        if sample_rate is not None and not 0.0 <= sample_rate <= 1.0:
            raise Invalid("Invalid request: sampleRate must be between 0 and 1")
        if max_traces is not None and not 1 <= max_traces <= MAX_TRACES_LIMIT:
            raise Invalid(f"Invalid request: maxTraces must be between 1 and {MAX_TRACES_LIMIT}")
        new = {
            "enabled": self.enabled if enabled is None else enabled,
            "sampleRate": self.sample_rate if sample_rate is None else sample_rate,
            "maxTraces": self.max_traces if max_traces is None else max_traces,
        }
        self.store.set_meta(META_TRACING, orjson.dumps(new).decode())  # first: if the write fails nothing changed
        self._apply(new)
        self.events.publish("tracing.configured", actor, **new)
        return new

    def clear(self, actor: str) -> int:
        count = len(self.traces)
        self.traces.clear()
        self.events.publish("tracing.cleared", actor, removed=count)
        return count

    def find(self, request_id: str | None, trace_id: str | None, tool: str | None, limit: int) -> list[dict[str, Any]]:
        """The kept traces, newest first, filtered."""
        out = []
        for trace in reversed(self.traces):
            if request_id is not None and trace["requestId"] != request_id:
                continue
            if trace_id is not None and trace["traceId"] != trace_id:
                continue
            if tool is not None and trace["tool"] != tool:
                continue
            out.append(trace)
            if len(out) >= limit:
                break
        return out

    def view(self) -> dict[str, Any]:
        durations = sorted(t["durationMs"] for t in self.traces)
        exporter = self.exporter
        return {
            "enabled": self.enabled,
            "sampleRate": self.sample_rate,
            "maxTraces": self.max_traces,
            "kept": len(self.traces),
            "recorded": self.recorded,
            "p50Ms": _percentile(durations, 0.50),
            "p95Ms": _percentile(durations, 0.95),
            "otlp": None if exporter is None else {"exported": exporter.exported, "failed": exporter.failed},
        }

    # --- state ---------------------------------------------------------------------------------------
    def _apply(self, doc: dict[str, Any]) -> None:
        was = self.enabled
        self.enabled = bool(doc["enabled"])
        self.sample_rate = float(doc["sampleRate"])
        if int(doc["maxTraces"]) != self.max_traces:
            self.max_traces = int(doc["maxTraces"])
            self.traces = deque(self.traces, maxlen=self.max_traces)
        if was != self.enabled:
            for switch in self.on_switch:
                switch()

    def load(self) -> None:
        """An admin's earlier settings, over the config file's (start-up)."""
        raw = self.store.get_meta(META_TRACING)
        if not raw:
            return
        try:
            self._apply(orjson.loads(raw))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.error("the stored tracing settings (%s) are malformed: ignored", META_TRACING)


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


class TracingCollector(Collector):
    """`paygate_traces_recorded_total`, `paygate_traces_kept`, and the OTLP export counts."""

    def __init__(self, tracing: Tracing) -> None:
        self.tracing = tracing

    def collect(self) -> Iterable[Metric]:
        yield CounterMetricFamily("paygate_traces_recorded", "tools/call traces recorded", value=self.tracing.recorded)
        yield GaugeMetricFamily(
            "paygate_traces_kept", "traces kept for GET /admin/tracing", value=len(self.tracing.traces)
        )
        exporter = self.tracing.exporter
        if exporter is not None:
            family = CounterMetricFamily("paygate_otlp_spans", "spans handed to the OTLP exporter", labels=["outcome"])
            family.add_metric(["exported"], exporter.exported)
            family.add_metric(["failed"], exporter.failed)
            yield family
