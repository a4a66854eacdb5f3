"""Traffic mirror: a sampled copy of each tools/call sent to a shadow server, fire-and-forget.

The outermost send stage. The copy is a task of its own, started before the real request and never
awaited on the answer's path, so the primary answer is never delayed by it; the copy is never charged
(the charge belongs to the call, and the shadow's answer is thrown away). At most MAX_IN_FLIGHT copies
are out at once: beyond that, and while the shadow is not connected, copies are dropped and counted.
Each copy has its own timeout (`timeoutMs`), after which the shadow is told to cancel it.

Configured by `mirror: {url, percentage, timeoutMs}` (the reference's names) or at runtime through
POST /admin/mirror; a runtime change (a DELETE included) is kept in the store's meta (`traffic.mirror`)
and, once there, wins over the config file: a restart keeps what the operator last set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Iterable
from typing import Any

import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paygate.config_traffic import MirrorSettings
from paygate.core.domain_errors import Invalid, NotFound
from paygate.events.hub import EventHub
from paygate.mcp.jsonrpc import Message
from paygate.store.base import Store
from paygate.traffic.chain import Send, Traffic, Upstream
from paygate.traffic.remote import BackendFactory, RemoteServer, http_backend, vet_url

log = logging.getLogger("paygate.traffic")

META_MIRROR = "traffic.mirror"
MAX_IN_FLIGHT = 32
MAX_ERROR_CHARS = 200


class Mirror:
    name = "mirror"

    def __init__(
        self,
        store: Store,
        events: EventHub,
        traffic: Traffic,
        allow_private: bool,
        configured: MirrorSettings | None,
        factory: BackendFactory = http_backend,
    ) -> None:
        self.store = store
        self.events = events
        self.traffic = traffic
        self.allow_private = allow_private
        self.configured = configured
        self.factory = factory
        self.enabled = False
        self.server: RemoteServer | None = None
        self.config: dict[str, Any] = {}
        self.percentage = 0
        self.timeout = 5.0
        self._reset_stats()
        self._tasks: set[asyncio.Task[None]] = set()  # copies in flight
        self._closing: set[asyncio.Task[None]] = set()  # replaced shadows being closed
        self._raw: str | None = None
        self._lock = asyncio.Lock()

    # --- the send stage ------------------------------------------------------------------------------
    async def around(self, request: Upstream, send: Send) -> Message:
        if request.tool is not None and (self.percentage >= 100 or secrets.randbelow(100) < self.percentage):
            self._copy(request)
        return await send(request)

    def _copy(self, request: Upstream) -> None:
        server = self.server
        if server is None or not server.ready or len(self._tasks) >= MAX_IN_FLIGHT:
            self.dropped += 1
            return
        params = request.params
        if isinstance(params, dict) and "_meta" in params:  # the client's progress token is not the shadow's
            params = {k: v for k, v in params.items() if k != "_meta"}
        task = asyncio.get_running_loop().create_task(self._send_copy(server, request.method, params))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.mirrored += 1

    async def _send_copy(self, server: RemoteServer, method: str, params: Any) -> None:
        started = time.perf_counter()
        server.enter()
        try:
            reply = await server.backend.request(method, params, self.timeout)
            self.completed += 1
            self.latency_total += time.perf_counter() - started
            if "error" in reply:
                self._failed(f"error answer: {reply['error'].get('message', '')!s}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never let a shadow's failure escape: it is counted and shown
            self._failed(f"{type(exc).__name__}: {exc}")
        finally:
            server.leave()

    def _reset_stats(self) -> None:
        """Stats are of the current shadow: a new one starts from zero."""
        self.mirrored = 0  # copies sent
        self.completed = 0  # copies the shadow answered (an error answer included)
        self.dropped = 0  # copies not sent: MAX_IN_FLIGHT out already, or the shadow not connected
        self.errors = 0  # copies that failed: transport error, timeout, or a JSON-RPC error answer
        self.latency_total = 0.0
        self.last_error: str | None = None

    def _failed(self, why: str) -> None:
        self.errors += 1
        self.last_error = why[:MAX_ERROR_CHARS]

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    # --- admin ---------------------------------------------------------------------------------------
    async def set(self, url: str, percentage: int, timeout_ms: int, actor: str) -> None:
        """Mirror to a new shadow (replacing any). Nothing changes unless the URL is acceptable and the
        shadow completes its handshake."""
        await vet_url(url, self.allow_private, "url")
        async with self._lock:
            server = RemoteServer(self.factory(url, "mirror"), url)
            try:
                await server.connect()
            except Exception as exc:
                await server.close()
                raise Invalid(
                    f"Invalid request: could not connect to the mirror at {server.shown_url}: {type(exc).__name__}"
                ) from exc
            config = {
                "url": url,
                "percentage": percentage,
                "timeoutMs": timeout_ms,
                "setAt": time.time(),
                "setBy": actor,
            }
            try:
                self._store(config)
            except Exception:
                await server.close()
                raise
            self._install(config, server)
        self.events.publish("mirror.set", actor, url=server.shown_url, percentage=percentage)

    def remove(self, actor: str) -> None:
        server = self.server
        if server is None:
            raise NotFound("No mirror is configured")
        self._store(None)  # kept: a restart does not bring back the config file's mirror
        self._install({}, None)
        self.events.publish("mirror.removed", actor, url=server.shown_url)

    def view(self) -> dict[str, Any]:
        server = self.server
        stats = {
            "mirrored": self.mirrored,
            "completed": self.completed,
            "dropped": self.dropped,
            "errors": self.errors,
            "inFlight": self.in_flight,
            "maxInFlight": MAX_IN_FLIGHT,
            "meanLatencyMs": round(self.latency_total / self.completed * 1000, 3) if self.completed else None,
            "lastError": self.last_error,
        }
        if server is None:
            return {"enabled": False, "stats": stats}
        return {
            "enabled": True,
            **server.describe(),
            "percentage": self.percentage,
            "timeoutMs": round(self.timeout * 1000),
            "stats": stats,
        }

    # --- state ---------------------------------------------------------------------------------------
    def _store(self, config: dict[str, Any] | None) -> None:
        raw = orjson.dumps(config, option=orjson.OPT_SORT_KEYS).decode()
        self.store.set_meta(META_MIRROR, raw)
        self._raw = raw

    def _install(self, config: dict[str, Any], server: RemoteServer | None) -> None:
        old = self.server
        self.config = config
        self.server = server
        self.percentage = int(config.get("percentage", 0)) if server is not None else 0
        self.timeout = int(config.get("timeoutMs", 5000)) / 1000
        self.enabled = server is not None
        self.traffic.refresh()
        if server is not None:
            self._reset_stats()
        if old is not None:  # its copies in flight are abandoned: nobody waits for a shadow
            for copy in list(self._tasks):
                copy.cancel()
            task = asyncio.get_running_loop().create_task(old.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def reload(self, _now: float = 0.0) -> None:
        """Start-up (the stored state, else the config file's), and a fleet peer's change (a ticker)."""
        raw = self.store.get_meta(META_MIRROR)
        if raw == self._raw and self._raw is not None:
            return
        self._raw = raw
        config: dict[str, Any] | None
        if raw is None:
            c = self.configured
            config = None if c is None else {"url": c.url, "percentage": c.percentage, "timeoutMs": c.timeout_ms}
        else:
            try:
                config = orjson.loads(raw)
                if config is not None:
                    str(config["url"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                log.error("the stored mirror (%s) is malformed: ignored", META_MIRROR)
                return
        if config is None:
            if self.server is not None:
                self._install({}, None)
            return
        if self.server is not None and self.config.get("url") == config["url"]:
            self.config = config  # same shadow: only the numbers change
            self.percentage, self.timeout = int(config["percentage"]), int(config["timeoutMs"]) / 1000
            return
        server = RemoteServer(self.factory(str(config["url"]), "mirror"), str(config["url"]))
        self._install(config, server)
        server.connect_in_background()

    async def close(self) -> None:
        """Shutdown: the shadow closed, copies in flight abandoned."""
        server, self.server = self.server, None
        pending = [*self._tasks, *self._closing]
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if server is not None:
            await server.close()


class MirrorCollector(Collector):
    def __init__(self, mirror: Mirror) -> None:
        self.mirror = mirror

    def collect(self) -> Iterable[Metric]:
        m = self.mirror
        family = CounterMetricFamily(
            "paygate_mirror_requests", "Copies of tools/call for the mirror, by outcome", labels=["outcome"]
        )
        for outcome, count in (("mirrored", m.mirrored), ("dropped", m.dropped), ("failed", m.errors)):
            family.add_metric([outcome], count)
        yield family
        yield GaugeMetricFamily(
            "paygate_mirror_in_flight", "Copies sent to the mirror and not yet answered", value=m.in_flight
        )
