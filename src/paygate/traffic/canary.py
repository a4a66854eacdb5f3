"""Canary routing: a weighted share of tools/call requests goes to a second server, with its own breaker.

A send stage, the innermost: it runs inside the charge, so a call is charged once whichever server
answers it, and a failed canary call is settled like any failed call (the refund policy). Each call is
drawn with `secrets.randbelow(100) < weight` (unbiased); only tools the canary also lists go there. The
canary's `Breaker` rolls it back: after `threshold` consecutive failures (a transport error, a timeout,
a JSON-RPC error or an `isError` result) calls go to the primary until `cooldown` seconds have passed
and one probe call succeeds.

The canary is set at runtime (POST /admin/canary, a remote URL vetted like a webhook's) and kept in the
store's meta (`traffic.canary`): a restart starts it again, and a Redis fleet's peers follow a change
within a few seconds (`reload`). A stopped or replaced canary is closed after its calls in flight end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paygate.core.domain_errors import Invalid, NotFound
from paygate.events.hub import EventHub
from paygate.mcp.backends.base import BackendError
from paygate.mcp.jsonrpc import Message
from paygate.store.base import Store
from paygate.traffic.breaker import Breaker
from paygate.traffic.chain import Send, Traffic, Upstream
from paygate.traffic.remote import BackendFactory, RemoteServer, http_backend, vet_url

log = logging.getLogger("paygate.traffic")

META_CANARY = "traffic.canary"
DRAIN_SECONDS = 300.0  # a stopped canary's calls in flight may take up to the longest tool timeout
LATENCY_SAMPLES = 1024


class VariantStats:
    """Calls, errors and the latency of the last LATENCY_SAMPLES calls of one variant."""

    def __init__(self) -> None:
        self.calls = 0
        self.errors = 0
        self.latencies: deque[float] = deque(maxlen=LATENCY_SAMPLES)  # seconds

    def record(self, ok: bool, seconds: float) -> None:
        self.calls += 1
        self.errors += not ok
        self.latencies.append(seconds)

    def view(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def pct(p: float) -> float | None:
            return round(ordered[min(int(p * len(ordered)), len(ordered) - 1)] * 1000, 3) if ordered else None

        return {
            "calls": self.calls,
            "errors": self.errors,
            "errorRate": round(self.errors / self.calls, 4) if self.calls else 0.0,
            "latencyMs": {
                "mean": round(sum(ordered) / len(ordered) * 1000, 3) if ordered else None,
                "p50": pct(0.5),
                "p95": pct(0.95),
            },
        }


def failed(reply: Message) -> bool:
    if "error" in reply:
        return True
    result = reply.get("result")
    return isinstance(result, dict) and result.get("isError") is True


class Canary:
    name = "canary"

    def __init__(
        self,
        store: Store,
        events: EventHub,
        traffic: Traffic,
        allow_private: bool,
        factory: BackendFactory = http_backend,
    ) -> None:
        self.store = store
        self.events = events
        self.traffic = traffic
        self.allow_private = allow_private
        self.factory = factory
        self.enabled = False
        self.server: RemoteServer | None = None
        self.config: dict[str, Any] = {}  # what is stored: url, weight, threshold, cooldownSeconds, created*
        self.weight = 0
        self.breaker = Breaker(5, 30.0)
        self.primary = VariantStats()
        self.canary = VariantStats()
        self._tools_source: list[dict[str, Any]] | None = None
        self._tools: frozenset[str] = frozenset()
        self._raw: str | None = None
        self._lock = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()

    # --- the send stage ------------------------------------------------------------------------------
    async def around(self, request: Upstream, send: Send) -> Message:
        server = self.server
        if (
            server is None
            or request.tool is None
            or self.weight <= 0
            or secrets.randbelow(100) >= self.weight
            or not server.ready
            or request.tool not in self._canary_tools(server)
            or not self.breaker.allow()  # open: rolled back to the primary (counted as a rejection)
        ):
            return await self._run(self.primary, send(request), None)
        server.enter()
        try:
            backend = server.backend
            return await self._run(
                self.canary, backend.request(request.method, request.params, request.timeout), self.breaker
            )
        finally:
            server.leave()

    async def _run(self, stats: VariantStats, pending: Any, breaker: Breaker | None) -> Message:
        started = time.perf_counter()
        try:
            reply: Message = await pending
        except BackendError:
            stats.record(False, time.perf_counter() - started)
            if breaker is not None:
                breaker.record(False)
            raise
        except asyncio.CancelledError:  # the client's doing, not the canary's: only free a half-open probe
            if breaker is not None and breaker.state == "half_open":
                breaker.record(False)
            raise
        ok = not failed(reply)
        stats.record(ok, time.perf_counter() - started)
        if breaker is not None:
            breaker.record(ok)
        return reply

    def _canary_tools(self, server: RemoteServer) -> frozenset[str]:
        tools = server.backend.tools
        if tools is not self._tools_source:
            self._tools = frozenset(t["name"] for t in tools)
            self._tools_source = tools
        return self._tools

    # --- admin ---------------------------------------------------------------------------------------
    async def start(self, url: str, weight: int, threshold: int, cooldown: float, actor: str) -> None:
        """Connect to a new canary (replacing any), then route `weight`% of calls to it. Nothing changes
        unless the URL is acceptable and the server completes its handshake."""
        await vet_url(url, self.allow_private, "remoteUrl")
        async with self._lock:
            server = RemoteServer(self.factory(url, "canary"), url)
            try:
                await server.connect()
            except Exception as exc:  # refused, handshake error, timeout: nothing changes
                await server.close()
                raise Invalid(
                    f"Invalid request: could not connect to the canary at {server.shown_url}: {type(exc).__name__}"
                ) from exc
            config = {
                "url": url,
                "weight": weight,
                "threshold": threshold,
                "cooldownSeconds": cooldown,
                "createdAt": time.time(),
                "createdBy": actor,
            }
            try:
                self._store(config)
            except Exception:
                await server.close()
                raise
            self._install(config, server)
        self.events.publish("canary.started", actor, url=server.shown_url, weight=weight)

    def update(self, weight: int | None, threshold: int | None, cooldown: float | None, actor: str) -> None:
        if self.server is None:
            raise NotFound("No canary is configured")
        config = dict(self.config)
        for name, value in (("weight", weight), ("threshold", threshold), ("cooldownSeconds", cooldown)):
            if value is not None:
                config[name] = value
        self._store(config)
        self.config = config
        self._apply_numbers(config)
        self.events.publish("canary.updated", actor, weight=self.weight, threshold=self.breaker.threshold)

    def stop(self, actor: str) -> None:
        """Calls go to the primary from now on; the canary is closed once its calls in flight end."""
        server = self.server
        if server is None:
            raise NotFound("No canary is configured")
        self._store(None)
        self._install({}, None)
        self.events.publish("canary.stopped", actor, url=server.shown_url)

    def view(self) -> dict[str, Any]:
        server = self.server
        if server is None:
            return {"enabled": False}
        breaker = self.breaker.snapshot()
        return {
            "enabled": True,
            **server.describe(),
            "weight": self.weight,
            "effectiveWeight": 0 if breaker["state"] == "open" else self.weight,
            "tools": sorted(self._canary_tools(server)),
            "breaker": breaker,
            "rolledBack": self.breaker.rejections,
            "variants": {"primary": self.primary.view(), "canary": self.canary.view()},
            "createdAt": self.config.get("createdAt"),
            "createdBy": self.config.get("createdBy"),
        }

    # --- state ---------------------------------------------------------------------------------------
    def _store(self, config: dict[str, Any] | None) -> None:
        raw = orjson.dumps(config, option=orjson.OPT_SORT_KEYS).decode()
        self.store.set_meta(META_CANARY, raw)
        self._raw = raw

    def _apply_numbers(self, config: dict[str, Any]) -> None:
        self.weight = int(config.get("weight", 0))
        self.breaker.threshold = int(config.get("threshold", 5))
        self.breaker.cooldown = float(config.get("cooldownSeconds", 30.0))

    def _install(self, config: dict[str, Any], server: RemoteServer | None) -> None:
        old = self.server
        self.config = config
        self.server = server
        if server is not None:
            self.breaker = Breaker(5, 30.0)
            self.primary, self.canary = VariantStats(), VariantStats()
            self._apply_numbers(config)
        self.enabled = server is not None
        self.traffic.refresh()
        if old is not None:
            task = asyncio.get_running_loop().create_task(old.close(DRAIN_SECONDS))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def reload(self, _now: float = 0.0) -> None:
        """Start-up, and a fleet peer's change (on a ticker): follow what the store says."""
        raw = self.store.get_meta(META_CANARY)
        if raw == self._raw:
            return
        self._raw = raw
        try:
            config = orjson.loads(raw) if raw else None
            url = str(config["url"]) if config else None
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.error("the stored canary (%s) is malformed: ignored", META_CANARY)
            return
        if config is None or url is None:
            if self.server is not None:
                self._install({}, None)
            return
        if self.server is not None and self.config.get("url") == url:
            self.config = config  # the same canary (a peer's PATCH): only the numbers change
            self._apply_numbers(config)
            return
        server = RemoteServer(self.factory(url, "canary"), url)
        self._install(config, server)
        server.connect_in_background()  # calls skip it until it is up

    async def close(self) -> None:
        """Shutdown: the canary and any still draining."""
        if self.server is not None:
            await self.server.close()
        for task in list(self._closing):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class CanaryCollector(Collector):
    """Per-variant calls and errors while a canary is set, its weight and whether its breaker is open."""

    def __init__(self, canary: Canary) -> None:
        self.canary = canary

    def collect(self) -> Iterable[Metric]:
        c = self.canary
        calls = CounterMetricFamily("paygate_canary_calls", "tools/call requests by variant", labels=["variant"])
        errors = CounterMetricFamily(
            "paygate_canary_errors", "failed tools/call requests by variant", labels=["variant"]
        )
        for variant, stats in (("primary", c.primary), ("canary", c.canary)):
            calls.add_metric([variant], stats.calls)
            errors.add_metric([variant], stats.errors)
        yield calls
        yield errors
        yield GaugeMetricFamily(
            "paygate_canary_weight", "Percent of calls routed to the canary", value=c.weight if c.enabled else 0
        )
        yield GaugeMetricFamily(
            "paygate_canary_breaker_open",
            "1 while the canary's breaker has rolled it back",
            value=float(c.enabled and c.breaker.state == "open"),
        )
