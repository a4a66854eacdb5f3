"""Traffic control (paygate/traffic, docs/traffic.md): each control built from Settings, registered on
the dispatcher's chains in the order below, and its admin router.

Call stages, outermost first (each may answer before any charge):
    aliases → dedup → cache → circuit breaker → concurrency limits / priority queue → [the gated call]
Send stages, outermost first (around each request upstream, inside the charge):
    mirror → circuit breaker (counts outcomes) → retry → canary → [the backend, with the tool's timeout]
"""

from __future__ import annotations

from fastapi import APIRouter

from paygate.runtime import Runtime
from paygate.store.shared import redis_store
from paygate.traffic.cache import CacheMetrics, ResponseCache
from paygate.traffic.dedup import Dedup, DedupMetrics
from paygate.traffic.routes import cache as cache_routes
from paygate.traffic.routes import dedup as dedup_routes


def traffic_routers(rt: Runtime) -> dict[str, APIRouter]:
    settings = rt.settings
    traffic = rt.dispatcher.traffic
    traffic.tool_timeouts = {
        tool: price.timeout_ms / 1000 for tool, price in settings.tool_pricing.items() if price.timeout_ms
    }
    routers: dict[str, APIRouter] = {}
    fleet = redis_store(rt.store) is not None  # peers' runtime changes are followed on a ticker

    dedup = Dedup(
        rt.billing,
        rt.store,
        rt.events,
        traffic.refresh,
        enabled=settings.dedup_enabled,
        window_seconds=settings.dedup_window_seconds,
        max_entries=settings.dedup_max_entries,
        auto_key=settings.dedup_auto_key,
        fleet=fleet,
    )
    dedup.load()
    traffic.add_call_stage(dedup)
    rt.tickers.append(dedup.tick)
    rt.metrics.registry.register(DedupMetrics(dedup))
    routers["dedup"] = dedup_routes.router(rt.guard, dedup)

    cache = ResponseCache(
        rt.billing,
        rt.store,
        rt.events,
        traffic.refresh,
        ttl_seconds=settings.cache_ttl_seconds or 0,
        max_entries=settings.max_cache_entries,
        tool_ttls={t: p.cache_ttl_seconds for t, p in settings.tool_pricing.items() if p.cache_ttl_seconds is not None},
        shared_tools=frozenset(t for t, p in settings.tool_pricing.items() if p.cache_shared),
        fleet=fleet,
    )
    cache.load()
    traffic.add_call_stage(cache)
    rt.tickers.append(cache.tick)
    rt.metrics.registry.register(CacheMetrics(cache))
    routers["cache"] = cache_routes.router(rt.guard, cache)
    return routers
