"""Prometheus metrics, one registry per gateway (so tests can build many).

Label values are bounded: tool names come from the backend's tool list
(anything else is counted as "other"), reasons from the deny-reason table,
paths from the set of routes the app serves.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from prometheus_client import CollectorRegistry, Gauge, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

disable_created_metrics()  # type: ignore[no-untyped-call]  # the _created series double the output and no dashboard reads them

OTHER = "other"
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class Series:
    """One labelled series of a `LoopCounter`: a plain number (see LoopCounter for why no lock)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: float = 0

    def inc(self, amount: float = 1) -> None:
        if amount < 0:  # prometheus_client's Counter refuses these too
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self.value += amount


class LoopCounter(Collector):
    """A labelled counter exposed as prometheus_client's `Counter` is (same name, help, label names,
    `_total` suffix; `_created` is off for all), whose `inc()` is one add. prometheus_client's `inc()`
    checks observability and takes a `threading.Lock` every time: ~5 % of a loaded gateway's CPU.

    Only for counters that are incremented on the event loop's thread, where /metrics is rendered too:
    `+=` is not atomic across threads. All of ours are (billing, the app's request count, webhook
    delivery). `labels()` keeps each series (label values are bounded: module docstring)."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry) -> None:
        self._name, self._doc, self._labelnames = name, documentation, list(labelnames)
        self._series: dict[tuple[str, ...], Series] = {}
        registry.register(self)

    def labels(self, *values: str) -> Series:
        """The series for these label values (in `labelnames` order), made at 0 the first time."""
        found = self._series.get(values)
        if found is None:
            if len(values) != len(self._labelnames):
                raise ValueError(f"{self._name}: expected labels {self._labelnames}, got {values!r}")
            found = self._series[values] = Series()
        return found

    def describe(self) -> Iterable[Metric]:
        """The family without samples: lets the registry refuse a second metric of the same name."""
        yield CounterMetricFamily(self._name, self._doc, labels=self._labelnames)

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(self._name, self._doc, labels=self._labelnames)
        for values, series in self._series.items():
            family.add_metric(values, series.value)
        yield family


class _FunctionCounter(Collector):
    """A counter whose value is read from a function at scrape time (one the code keeps anyway)."""

    def __init__(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        self._name, self._doc, self._read = name, documentation, read

    def collect(self) -> Iterable[Metric]:
        yield CounterMetricFamily(self._name, self._doc, value=self._read())


class _ConnectionCollector(Collector):
    """The HTTP server's open connections and its refusals by reason (paygate/http/server.py)."""

    def __init__(self, open_now: Callable[[], float], refused: Callable[[], Mapping[str, int]]) -> None:
        self._open, self._refused = open_now, refused

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily("paygate_open_connections", "Open client connections", value=self._open())
        family = CounterMetricFamily(
            "paygate_connections_refused",
            "Connections refused (over a connection cap) or cut (header too large, header or request timeout)",
            labels=["reason"],
        )
        for reason, count in self._refused().items():
            family.add_metric([reason], count)
        yield family


class _TaskCollector(Collector):
    def __init__(self, counts: Callable[[], Mapping[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily("paygate_tasks", "MCP tasks held in memory, by status", labels=["status"])
        for status, count in self._counts().items():
            family.add_metric([status], count)
        yield family


class _GaugeFunctions(Collector):
    """Gauges whose values are read from functions at scrape time (counts the services keep anyway)."""

    def __init__(self, gauges: Mapping[str, tuple[str, Callable[[], float]]]) -> None:
        self._gauges = dict(gauges)

    def collect(self) -> Iterable[Metric]:
        for name, (documentation, read) in self._gauges.items():
            yield GaugeMetricFamily(name, documentation, value=read())


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.started = time.time()
        r = self.registry
        self.tool_calls = LoopCounter("paygate_tool_calls", "Total tool calls processed", ["tool", "status"], r)
        self.credits_charged = LoopCounter("paygate_credits_charged", "Total credits charged", ["tool"], r)
        self.denials = LoopCounter("paygate_denials", "Denials by reason", ["reason"], r)
        self.rate_limit_hits = LoopCounter("paygate_rate_limit_hits", "Rate limit hits per tool", ["tool"], r)
        self.refunds = LoopCounter("paygate_refunds", "Credit refunds per tool", ["tool"], r)
        self.http_requests = LoopCounter("paygate_http_requests", "HTTP requests", ["method", "path", "status"], r)
        self.active_keys = Gauge("paygate_active_keys_total", "Number of active (non-revoked) API keys", registry=r)
        self.active_sessions = Gauge("paygate_active_sessions_total", "Active MCP sessions", registry=r)
        self.total_credits = Gauge("paygate_total_credits_available", "Total credits across all keys", registry=r)
        self.uptime = Gauge("paygate_uptime_seconds", "Server uptime in seconds", registry=r)
        self.uptime.set_function(lambda: time.time() - self.started)
        self.backend_up = Gauge("paygate_backend_up", "1 when the backend MCP server is ready", registry=r)
        self.webhook_deliveries = LoopCounter(
            "paygate_webhook_deliveries", "Webhook delivery attempts by result", ["result"], r
        )  # result: success | failure
        self.webhook_queue_depth = Gauge(
            "paygate_webhook_queue_depth", "Webhook events queued or in batches not yet delivered", registry=r
        )
        self.webhook_dead_letters = Gauge(
            "paygate_webhook_dead_letters", "Webhook batches in the dead-letter queue", registry=r
        )
        # The event bus: what it has carried, and what waits for its deferred subscribers (a queue
        # that keeps growing means a subscriber cannot keep up).
        self.events_pending = Gauge(
            "paygate_event_queue_depth", "Events waiting for the deferred subscribers", registry=r
        )
        self._events_published: Callable[[], float] = lambda: 0.0
        r.register(
            _FunctionCounter(
                "paygate_events_published", "Events published on the internal bus", lambda: self._events_published()
            )
        )
        self._known_tools: frozenset[str] = frozenset()
        self.tool_calls_for = self.tool_calls.labels
        self.credits_charged_for = self.credits_charged.labels
        self.denials_for = self.denials.labels
        self.rate_limit_hits_for = self.rate_limit_hits.labels
        self.refunds_for = self.refunds.labels
        self.http_requests_for = self.http_requests.labels
        self.webhook_deliveries_for = self.webhook_deliveries.labels

    def set_known_tools(self, names: list[str]) -> None:
        self._known_tools = frozenset(names[:1000])

    def tool_label(self, name: str) -> str:
        return name if name in self._known_tools else OTHER

    def bind_gauges(
        self,
        active_keys: Callable[[], float],
        total_credits: Callable[[], float],
        sessions: Callable[[], float],
        backend_up: Callable[[], float],
    ) -> None:
        self.active_keys.set_function(active_keys)
        self.total_credits.set_function(total_credits)
        self.active_sessions.set_function(sessions)
        self.backend_up.set_function(backend_up)

    def bind_webhook_gauges(self, queue_depth: Callable[[], float], dead_letters: Callable[[], float]) -> None:
        self.webhook_queue_depth.set_function(queue_depth)
        self.webhook_dead_letters.set_function(dead_letters)

    def bind_event_bus(self, published: Callable[[], float], pending: Callable[[], float]) -> None:
        self._events_published = published
        self.events_pending.set_function(pending)

    def bind_connections(self, open_now: Callable[[], float], refused: Callable[[], Mapping[str, int]]) -> None:
        """The HTTP server's connection counts (once per registry: the server is built once)."""
        self.registry.register(_ConnectionCollector(open_now, refused))

    def bind_admin_auth(self, failures: Callable[[], float], throttled: Callable[[], float]) -> None:
        """Failed admin authentications, and admin requests refused because their address went over
        `authFailureLimit` (those are not written to the audit log one by one)."""
        r = self.registry
        r.register(_FunctionCounter("paygate_admin_auth_failures", "Failed admin-key authentications", failures))
        r.register(
            _FunctionCounter(
                "paygate_admin_auth_throttled", "Admin requests refused for too many failed authentications", throttled
            )
        )

    def bind_tasks(self, counts: Callable[[], Mapping[str, int]]) -> None:
        """MCP tasks held in memory, by status (mcp/tasks.py)."""
        self.registry.register(_TaskCollector(counts))

    def bind_inventory(
        self,
        templates: Callable[[], float],
        teams: Callable[[], float],
        admin_keys: Callable[[], float],
        groups: Callable[[], float],
        pending_alerts: Callable[[], float],
    ) -> None:
        """Counts of what the gateway holds, read at scrape time (the reference's names)."""
        self.registry.register(
            _GaugeFunctions(
                {
                    "paygate_templates_total": ("Number of key templates", templates),
                    "paygate_active_teams_total": ("Number of active teams", teams),
                    "paygate_admin_keys_total": (
                        "Number of active admin keys (the bootstrap key included)",
                        admin_keys,
                    ),
                    "paygate_groups_total": ("Number of active key groups", groups),
                    "paygate_pending_alerts_total": ("Alerts fired and not yet read by GET /alerts", pending_alerts),
                }
            )
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
