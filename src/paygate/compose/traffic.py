"""Traffic control (paygate/traffic, docs/traffic.md): each control built from Settings, registered on
the dispatcher's chains in the order below, and its admin router.

Call stages, outermost first (each may answer before any charge):
    aliases → dedup → cache → circuit breaker → concurrency limits / priority queue → [the gated call]
Send stages, outermost first (around each request upstream, inside the charge):
    mirror → circuit breaker (counts outcomes) → retry → canary → [the backend, with the tool's timeout]
"""

from __future__ import annotations

from fastapi import APIRouter

from paygate.core.records import KeyRecord
from paygate.keys.service import KeyNotFound
from paygate.runtime import Runtime
from paygate.traffic.concurrency import ConcurrencyLimits, LimitsCollector
from paygate.traffic.limits_admin import LimitsAdmin
from paygate.traffic.priority import PriorityQueue, QueueConfig
from paygate.traffic.routes import concurrency, priority_queue


def traffic_routers(rt: Runtime) -> dict[str, APIRouter]:
    settings = rt.settings
    traffic = rt.dispatcher.traffic
    traffic.tool_timeouts = {
        tool: price.timeout_ms / 1000 for tool, price in settings.tool_pricing.items() if price.timeout_ms
    }
    routers: dict[str, APIRouter] = {}
    routers.update(_concurrency(rt))  # the innermost call stage: registered last of them
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
