"""Traffic control (paygate/traffic, docs/traffic.md): each control built from Settings, registered on
the dispatcher's chains in the order below, and its admin router.

Call stages, outermost first (each may answer before any charge):
    aliases → dedup → cache → circuit breaker → concurrency limits / priority queue → [the gated call]
Send stages, outermost first (around each request upstream, inside the charge):
    mirror → circuit breaker (counts outcomes) → retry → canary → [the backend, with the tool's timeout]
"""

from __future__ import annotations

from fastapi import APIRouter

from paygate.core.domain_errors import Invalid
from paygate.core.records import KeyRecord
from paygate.keys.service import KeyNotFound
from paygate.runtime import Runtime
from paygate.traffic.aliases import AliasCollector, ToolAliases
from paygate.traffic.canary import Canary, CanaryCollector
from paygate.traffic.concurrency import ConcurrencyLimits, LimitsCollector
from paygate.traffic.limits_admin import LimitsAdmin
from paygate.traffic.mirror import Mirror, MirrorCollector
from paygate.traffic.priority import PriorityQueue, QueueConfig
from paygate.traffic.remote import check_static
from paygate.traffic.routes import aliases as alias_routes
from paygate.traffic.routes import canary as canary_routes
from paygate.traffic.routes import concurrency, priority_queue
from paygate.traffic.routes import mirror as mirror_routes

RELOAD_SECONDS = 5.0  # how soon a Redis fleet's peers follow an admin change to aliases, canary, mirror


def traffic_routers(rt: Runtime) -> dict[str, APIRouter]:
    settings = rt.settings
    traffic = rt.dispatcher.traffic
    traffic.tool_timeouts = {
        tool: price.timeout_ms / 1000 for tool, price in settings.tool_pricing.items() if price.timeout_ms
    }
    routers: dict[str, APIRouter] = {}

    # call stages, outermost first
    backend = rt.backend
    aliases = ToolAliases(rt.store, rt.events, traffic, lambda: frozenset(t["name"] for t in backend.tools))
    aliases.reload()
    traffic.add_call_stage(aliases)
    rt.metrics.registry.register(AliasCollector(aliases))
    routers["tool_aliases"] = alias_routes.router(rt.guard, aliases)
    routers.update(_concurrency(rt))  # the innermost call stage: registered last of them

    # send stages, outermost first
    allow_private = settings.traffic_allow_private
    if settings.mirror is not None:
        try:
            check_static(settings.mirror.url, allow_private, "mirror.url")
        except Invalid as exc:  # the CLI prints `error: …` and exits
            raise ValueError(exc.message.removeprefix("Invalid request: ")) from exc
    mirror = Mirror(rt.store, rt.events, traffic, allow_private, settings.mirror)
    traffic.add_send_stage(mirror)
    rt.metrics.registry.register(MirrorCollector(mirror))
    routers["mirror"] = mirror_routes.router(rt.guard, mirror)

    canary = Canary(rt.store, rt.events, traffic, allow_private)
    traffic.add_send_stage(canary)
    rt.metrics.registry.register(CanaryCollector(canary))
    routers["canary"] = canary_routes.router(rt.guard, canary)

    async def start() -> None:
        mirror.reload()
        canary.reload()

    async def stop() -> None:
        await mirror.close()
        await canary.close()

    rt.on_start.append(start)
    rt.on_stop.append(stop)
    last = [0.0]

    def reload(now: float) -> None:
        if now - last[0] >= RELOAD_SECONDS:
            last[0] = now
            aliases.reload()
            mirror.reload()
            canary.reload()

    rt.tickers.append(reload)
    return routers


def _concurrency(rt: Runtime) -> dict[str, APIRouter]:
    """Concurrency limits and the priority queue: one call stage (traffic/concurrency.py)."""
    settings = rt.settings
    queue_settings = settings.priority_queue
    config = QueueConfig()
    if queue_settings is not None:
        config.enabled = queue_settings.enabled
        config.max_queue_depth = queue_settings.max_queue_depth
        config.max_wait_ms.update({str(tier): ms for tier, ms in queue_settings.max_wait_ms.items()})
        config.promote_after_ms = queue_settings.promote_after_ms
    billing = rt.dispatcher.billing
    limits = ConcurrencyLimits(
        settings.max_concurrent_per_key or 0,
        settings.max_concurrent_per_tool or 0,
        PriorityQueue(config),
        billing.resolve,
    )

    def find_key(ref: str) -> KeyRecord | None:
        try:
            return rt.keys.find(ref)
        except KeyNotFound:
            return None

    traffic = rt.dispatcher.traffic
    admin = LimitsAdmin(limits, rt.store, rt.events, find_key, traffic.refresh)
    admin.load()
    traffic.add_call_stage(limits)
    rt.tickers.append(admin.reload)
    rt.metrics.registry.register(LimitsCollector(limits))
    return {
        "concurrency": concurrency.router(rt.guard, admin),
        "priority_queue": priority_queue.router(rt.guard, admin),
    }
